/** The entry file of a worker process (the supervisor forks it through node:cluster). */
import { runWorker } from './worker.ts';

runWorker();
