import { DefaultLogger, Runtime } from '@temporalio/worker';

// Keep test output to what matters: the SDK's info-level worker lifecycle lines are noise here.
Runtime.install({ logger: new DefaultLogger('WARN') });
