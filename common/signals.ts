import { defineSignal } from '@temporalio/workflow';

/**
 * Sent by an HPC activity when its stage stops (true) or starts again (false) making progress; the
 * workflow mirrors it in the AssetStalled search attribute. Shared so sender and handler cannot drift.
 */
export const stallChangedSignal = defineSignal<[stalled: boolean]>('stallChanged');
