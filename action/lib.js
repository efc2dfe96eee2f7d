'use strict';
// Helpers shared by main.js and post.js: the runner's side of the action
// protocol (inputs, workflow commands, environment files), done by hand so
// that the action needs no npm package and no build step. The protocol is
// the one @actions/core implements:
//   - input "role-to-assume" arrives as INPUT_ROLE-TO-ASSUME (spaces become
//     underscores, letters upper case, hyphens kept), with action.yml's
//     default filled in by the runner;
//   - GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STATE are files to which a step
//     appends "name<<DELIMITER\nvalue\nDELIMITER\n"; a state saved by main
//     reaches post as STATE_name;
//   - "::error::message" on stdout annotates the step, and a non-zero exit
//     status fails it.
// Nothing here knows which runner, real or simulated, it talks to.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const { spawn } = require('node:child_process');

function getInput(name) {
  const v = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '';
  return v.trim();
}

// escapeData is @actions/core's escaping of a command's message.
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function command(name, message) {
  process.stdout.write(`::${name}::${escapeData(message)}${os.EOL}`);
}

const log = {
  info: (msg) => process.stdout.write(`${msg}${os.EOL}`),
  warning: (msg) => command('warning', msg),
  error: (msg) => command('error', msg),
  group: (title) => process.stdout.write(`::group::${escapeData(title)}${os.EOL}`),
  endGroup: () => process.stdout.write(`::endgroup::${os.EOL}`),
};

// appendFileCommand writes name=value to the environment file named by the
// variable fileVar, in the heredoc form that survives any value.
function appendFileCommand(fileVar, name, value) {
  const file = process.env[fileVar];
  if (!file) {
    throw new Error(`${fileVar} is not set: this runs only as a step of a GitHub Actions job`);
  }
  const delimiter = `ghadelimiter_${crypto.randomUUID()}`;
  value = String(value);
  if (name.includes(delimiter) || value.includes(delimiter)) {
    throw new Error(`${fileVar}: ${name}: value contains the delimiter`);
  }
  fs.appendFileSync(file, `${name}<<${delimiter}${os.EOL}${value}${os.EOL}${delimiter}${os.EOL}`);
}

const exportVariable = (name, value) => appendFileCommand('GITHUB_ENV', name, value);
const setOutput = (name, value) => appendFileCommand('GITHUB_OUTPUT', name, value);
const saveState = (name, value) => appendFileCommand('GITHUB_STATE', name, value);
const getState = (name) => process.env[`STATE_${name}`] || '';

// run starts file with args (in env and cwd when given), waits at most
// timeoutMs, and resolves with {code, signal, stdout, stderr} (code null
// when it was killed). It never rejects for a non-zero exit; it rejects
// when the program cannot be started.
function run(file, args, timeoutMs, env, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, env: env || process.env, cwd });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

// tail returns the last n lines of the file at path ('' if unreadable),
// reading at most its last 64 KiB.
function tail(path, n) {
  let fd;
  try {
    fd = fs.openSync(path, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 << 10);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// alive reports whether process pid still runs. A zombie (exited, not yet
// reaped: imdsd outlives the step that started it, so its parent is
// whatever adopted it, which in a job container may never reap) counts as
// gone.
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) S ...": the state follows the last ')'.
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }
  return true;
}

// stop sends SIGTERM (on Windows: terminates) to pid, waits up to graceMs
// for it to exit, then kills it. It resolves with 'exited', 'killed',
// 'gone' (not running to begin with) or 'survived'.
async function stop(pid, graceMs) {
  if (!alive(pid)) return 'gone';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  for (const deadline = Date.now() + graceMs; Date.now() < deadline; ) {
    await sleep(100);
    if (!alive(pid)) return 'exited';
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'exited';
  }
  for (const deadline = Date.now() + 3000; Date.now() < deadline; ) {
    await sleep(100);
    if (!alive(pid)) return 'killed';
  }
  return 'survived';
}

module.exports = {
  getInput, log, exportVariable, setOutput, saveState, getState, run, tail, sleep, alive, stop,
};
