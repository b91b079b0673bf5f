// The two libraries below ship without type declarations; these cover only what activities/ calls.
// Their results are still parsed with zod where they cross into our code (see gltf-validation.ts).

declare module 'draco3dgltf' {
  /** Emscripten module instances, passed through untouched to glTF-Transform's KHRDracoMeshCompression. */
  export function createDecoderModule(options?: object): Promise<unknown>;
  export function createEncoderModule(options?: object): Promise<unknown>;
  const draco3d: { createDecoderModule: typeof createDecoderModule; createEncoderModule: typeof createEncoderModule };
  export default draco3d;
}

declare module 'gltf-validator' {
  export interface ValidationOptions {
    uri?: string;
    format?: 'glb' | 'gltf';
    maxIssues?: number;
    ignoredIssues?: string[];
    severityOverrides?: Record<string, number>;
    externalResourceFunction?: (uri: string) => Promise<Uint8Array>;
    validateAccessorData?: boolean;
    writeTimestamp?: boolean;
  }
  /** The report's shape is checked with zod by the caller. */
  export function validateBytes(data: Uint8Array, options?: ValidationOptions): Promise<unknown>;
  export function version(): string;
  const validator: { validateBytes: typeof validateBytes; version: typeof version };
  export default validator;
}
