// Start and stop one `brazen serve` process per test file (shared by every JS suite).
// Launches `$BRAZEN_BIN serve --host 127.0.0.1 --port 0 --asr echo --llm echo --tts tone --api-key KEY` (`tts`, `asr`
// and `llm` pick other engines, e.g. `piper` for a voice with phoneme timings, or the real models), reads the
// bound address from the stdout line (`env`: more server settings as BRAZEN_* variables)
// `brazen listening on http://127.0.0.1:PORT`, stops it by PID.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const API_KEY = 'conformance-test-key';
export const SECOND_KEY = 'conformance-second-key';
const LISTEN_RE = /brazen listening on (http:\/\/127\.0\.0\.1:(\d+))/;

export async function startBrazen(name, { timeoutMs = 30000, tts = 'tone', asr = 'echo', llm = 'echo', env: extraEnv = {} } = {}) {
  const bin = process.env.BRAZEN_BIN;
  if (!bin) throw new Error('BRAZEN_BIN is not set (path to the built `brazen` binary)');
  const logDir = process.env.BRAZEN_CONF_LOGS || '/tmp/brazen-conformance-logs';
  fs.mkdirSync(logDir, { recursive: true });
  const logPath = path.join(logDir, `server-${name}.log`);
  const log = fs.createWriteStream(logPath);
  // The tone voice by default: the scenarios check reply audio by its length (40 ms per character).
  const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--asr', asr, '--llm', llm, '--tts', tts, '--api-key', API_KEY, '--api-key', SECOND_KEY];
  log.write(`$ ${bin} ${args.join(' ')}\n`);
  // The harness's own variables are not server configuration; keep them out of its environment.
  // Each server keeps its data (the database, the agent's documents) in a folder of its own.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `brazen-data-${name}-`));
  const env = {
    BRAZEN_DATA_DIR: dataDir,
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'BRAZEN_BIN' && k !== 'BRAZEN_CACHE' && !k.startsWith('BRAZEN_CONF_'))),
    ...extraEnv,
  };
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stderr.on('data', (d) => log.write(d));
  const rl = readline.createInterface({ input: child.stdout });
  const baseUrl = await new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (!done) { done = true; child.kill('SIGKILL'); reject(new Error(`brazen did not print its listening line within ${timeoutMs} ms (log: ${logPath})`)); }
    }, timeoutMs);
    rl.on('line', (line) => {
      log.write(line + '\n');
      const m = LISTEN_RE.exec(line);
      if (m && !done) { done = true; clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`brazen exited with ${code} before listening (log: ${logPath})`)); }
    });
  });
  const port = Number(new URL(baseUrl).port);
  const health = await fetch(`${baseUrl}/health`);
  if (health.status !== 200) throw new Error(`/health answered ${health.status}`);
  await health.json();
  return {
    baseUrl,
    port,
    wsBase: `ws://127.0.0.1:${port}`,
    logPath,
    logTail(n = 40) {
      try { return fs.readFileSync(logPath, 'utf8').split('\n').slice(-n).join('\n'); } catch { return '(no log)'; }
    },
    async stop() {
      const cleanUp = () => fs.rmSync(dataDir, { recursive: true, force: true });
      if (child.exitCode !== null || child.signalCode !== null) { cleanUp(); return; }
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
      log.end();
      cleanUp();
    },
  };
}
