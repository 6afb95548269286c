#!/usr/bin/env node
/** The `switchboard` command: start, validate, demo, schema, simulate, state, cache. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { ConfigLoadError } from '../gateway.ts';
import { startGateway } from '../index.ts';
import { formatConfigError } from '../config/load.ts';
import { loadConfigFile } from '../config/load-text.ts';
import { jsonSchema } from '../config/schema.ts';
import { demo } from './demo.ts';
import { runSupervisorUntilSignal, runUntilSignal } from './signals.ts';
import { compactAtStart } from '../util/heap.ts';
import { Supervisor } from '../process/supervisor.ts';
import { announceReady, inheritedSockets, PidFile, upgrading } from '../process/handover.ts';
import { simulateCommand, type SimulateOptions } from '../simulate/command.ts';
import { registerStateCommand } from './state-command.ts';
import { registerCacheCommand } from './cache-command.ts';
import { defaultLogFormat, type LogFormat, type LogLevel } from '../observability/logger.ts';
import { parseAccessLogFormat, type AccessLogFormat } from '../observability/access-log.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('switchboard')
  .description('Load balancer, reverse proxy and API gateway')
  .version(pkg.version, '-v, --version')
  .addOption(new Option('--log-level <level>', 'process log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
  .addOption(new Option('--log-format <format>', 'process log format (default: pretty when stderr is a terminal, json otherwise)').choices(['pretty', 'json']))
  .showHelpAfterError();

const accessLogOption = (fallback: string): Option => new Option('--access-log <target>', 'access log: off, stdout or a file path').default(fallback);
const accessLogFormatOption = (): Option =>
  new Option('--access-log-format <format>', 'access log format: json, common, combined, or a template with placeholders (docs/logging.md)')
    .default('json')
    .argParser((text: string): AccessLogFormat => {
      try {
        return parseAccessLogFormat(text);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    });

function logLevel(): LogLevel {
  return program.opts<{ logLevel: LogLevel }>().logLevel;
}

function logFormat(): LogFormat {
  return program.opts<{ logFormat?: LogFormat }>().logFormat ?? defaultLogFormat();
}

program
  .command('start')
  .description('run the gateway')
  .option('-c, --config <file>', 'config file (YAML or JSON)', 'switchboard.yaml')
  .addOption(accessLogOption('stdout'))
  .addOption(accessLogFormatOption())
  .option('--no-watch', 'do not reload when the config file changes')
  .option('--pid-file <path>', "write the main process's PID here (an upgrade, SIGUSR2, writes the new one's)")
  .action(async (opts: { config: string; accessLog: string; accessLogFormat: AccessLogFormat; watch: boolean; pidFile?: string }) => {
    try {
      // Listening sockets from the Switchboard this one upgrades (SIGUSR2), if it was started so.
      const sockets = inheritedSockets();
      const checked = await loadConfigFile(opts.config);
      if (!checked.ok) throw new ConfigLoadError(checked.errors);
      const how = {
        config: opts.config,
        accessLog: opts.accessLog,
        accessLogFormat: opts.accessLogFormat,
        logLevel: logLevel(),
        logFormat: logFormat(),
        watch: opts.watch,
        sockets,
      };
      const pidFile = new PidFile(opts.pidFile);
      // Written at once on a plain start (as nginx does); in an upgrade only once this process
      // serves, before the old one is told to go (systemd's PIDFile= follows it then).
      const upgrade = upgrading();
      if (!upgrade) pidFile.write();
      const serving = <T>(t: T): T => {
        if (upgrade) pidFile.write();
        announceReady();
        return t;
      };
      try {
        if (checked.config.workers > 1) await runSupervisorUntilSignal(Supervisor.start({ ...how, beforeForking: compactAtStart }).then(serving));
        // Start-up's garbage is collected before the gateway listens (util/heap.ts): in an upgrade the old process serves meanwhile.
        else await runUntilSignal(startGateway({ ...how, beforeListening: compactAtStart }).then(serving));
      } finally {
        pidFile.remove();
      }
      process.exit(0);
    } catch (err) {
      if (err instanceof ConfigLoadError) {
        for (const e of err.errors) process.stderr.write(`${formatConfigError(e)}\n`);
        process.exit(2);
      }
      process.stderr.write(`switchboard: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });

program
  .command('validate')
  .description('check a config file, print every problem; exit 0 when valid, 2 when not')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .action(async (opts: { config: string }) => {
    const result = await loadConfigFile(opts.config);
    if (result.ok) {
      const c = result.config;
      process.stdout.write(`${opts.config}: valid (${c.listeners.length} listeners, ${c.routes.length} routes, ${c.upstreams.size} upstreams)\n`);
      process.exit(0);
    }
    for (const e of result.errors) process.stderr.write(`${formatConfigError(e)}\n`);
    process.stderr.write(`${result.errors.length} problem${result.errors.length === 1 ? '' : 's'} in ${opts.config}\n`);
    process.exit(2);
  });

program
  .command('demo')
  .description('start three demo origins and the gateway on 127.0.0.1:8080 balancing across them')
  .addOption(accessLogOption('stdout'))
  .addOption(accessLogFormatOption())
  .action(async (opts: { accessLog: string; accessLogFormat: AccessLogFormat }) => {
    try {
      await demo({ accessLog: opts.accessLog, accessLogFormat: opts.accessLogFormat, logLevel: logLevel(), logFormat: logFormat() });
      process.exit(0);
    } catch (err) {
      if (err instanceof ConfigLoadError) for (const e of err.errors) process.stderr.write(`${formatConfigError(e)}\n`);
      else process.stderr.write(`switchboard demo: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });

program
  .command('schema')
  .description("print the config's JSON Schema (for editors)")
  .action(() => {
    process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  });

program
  .command('simulate')
  .description('compare balancing algorithms on a simulated fleet (built-in scenarios or a scenario file)')
  .option('-c, --config <file>', 'scenario file (YAML)')
  .option('--scenario <name>', 'built-in scenario, or "all" (default: equal)')
  .option('--seed <n>', 'random seed (default: 1)')
  .option('--requests <n>', "requests per algorithm (default: the scenario's)")
  .option('--algorithms <list>', 'comma-separated algorithms (default: all)')
  .option('--hash-table <table>', 'ring or maglev, for ip-hash and consistent-hash')
  .option('--html <file>', 'also write an HTML report with charts')
  .option('--list', 'list the built-in scenarios')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (opts: SimulateOptions) => {
    process.exit(await simulateCommand(opts));
  });

registerStateCommand(program);
registerCacheCommand(program);

await program.parseAsync(process.argv);
