'use strict';
// The main step of the imdsd GitHub Action (action.yml): download imdsd's
// release archive for this runner, verify it against the release's
// SHA256SUMS, start `imdsd run --source web-identity --web-identity-ci
// github` on loopback in the background, wait until it holds credentials,
// and point the job's later steps at it through GITHUB_ENV. post.js stops
// it at the end of the job.
//
// imdsd asks the runner for a new OIDC token at every refresh, so the
// credentials it serves stay valid for the whole job, however long, while
// a role session lasts at most role-duration-seconds.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { getInput, log, exportVariable, setOutput, saveState, run, tail, sleep, stop } = require('./lib.js');

const DEFAULT_RELEASE_URL = 'https://github.com/imdsd/imdsd/releases';
const START_TIMEOUT_MS = 60_000; // spawn → credentials held
const SUMS_MAX_BYTES = 1 << 20;
const ARCHIVE_MAX_BYTES = 256 << 20;
const SUMS_TIMEOUT_MS = 30_000;
const ARCHIVE_TIMEOUT_MS = 300_000;

// Variables that come before IMDS in every SDK's default credential
// chain: while one is set, SDKs never ask imdsd.
const SHADOWING = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

function readInputs() {
  const errs = [];
  const roleARN = getInput('role-to-assume');
  const m = /^arn:aws[a-z-]*:iam::(\d{12}):role\/.+$/.exec(roleARN);
  if (!m) errs.push(`role-to-assume: must be a role ARN such as arn:aws:iam::123456789012:role/ci (got "${roleARN}")`);
  const region = getInput('aws-region');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) errs.push(`aws-region: must be a region such as us-east-1 (got "${region}")`);
  const durationText = getInput('role-duration-seconds') || '3600';
  const duration = Number(durationText);
  // imdsd serves no set with under 30 minutes left, and renews at most
  // 40 minutes before the end: it needs sessions of 45 minutes at least.
  if (!/^\d+$/.test(durationText) || duration < 2700 || duration > 43200) {
    errs.push(`role-duration-seconds: must be a number of seconds, 2700..43200 (got "${durationText}")`);
  }
  const inputs = {
    roleARN,
    account: m ? m[1] : '',
    region,
    duration,
    audience: getInput('audience') || 'sts.amazonaws.com',
    sessionName: getInput('role-session-name') || 'GitHubActions',
    version: getInput('version') || 'latest',
    releaseURL: (getInput('release-url') || DEFAULT_RELEASE_URL).replace(/\/+$/, ''),
    listen: getInput('listen') || '127.0.0.1:0',
  };
  if (!/^https?:\/\/[^/]/.test(inputs.releaseURL)) errs.push(`release-url: must be an http(s) URL (got "${inputs.releaseURL}")`);
  if (errs.length) throw new Error(`invalid inputs:\n  ${errs.join('\n  ')}`);
  return inputs;
}

// checkOIDC fails before anything is downloaded when the job cannot have
// OIDC tokens: imdsd would only fail the same way a minute later.
function checkOIDC() {
  for (const v of ['ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    if (!process.env[v]) {
      throw new Error(
        `${v} is not set, so imdsd cannot get OIDC tokens from the runner: give the job (or the workflow) ` +
          '"permissions: id-token: write". (Workflows triggered by pull requests from forks get no OIDC token.)',
      );
    }
  }
}

function warnShadowing() {
  for (const v of SHADOWING) {
    if (process.env[v]) {
      log.warning(
        `${v} is set in this step's environment (the workflow's env:, or an earlier step such as configure-aws-credentials): ` +
          "SDKs and the AWS CLI use it before IMDS, so they will not use imdsd's credentials. Remove it for the steps that should.",
      );
    }
  }
  if (/^true$/i.test(process.env.AWS_EC2_METADATA_DISABLED || '')) {
    log.warning('AWS_EC2_METADATA_DISABLED=true is set: SDKs will not ask imdsd (IMDS) for credentials. Remove it.');
  }
}

// platform is this runner's name in release archive names (make dist).
function platform() {
  const oses = { linux: 'linux', darwin: 'darwin', win32: 'windows' };
  const arches = { x64: 'amd64', arm64: 'arm64' };
  const o = oses[process.platform];
  const a = arches[process.arch];
  if (!o || !a) {
    throw new Error(`imdsd releases have no build for ${process.platform}/${process.arch} (only linux, darwin: x64, arm64; windows: x64)`);
  }
  return { os: o, arch: a, exe: o === 'windows' ? 'imdsd.exe' : 'imdsd' };
}

// download GETs url, following redirects (GitHub answers release downloads
// with a redirect to its object store), and returns the body, at most
// maxBytes, within timeoutMs.
async function download(url, maxBytes, timeoutMs) {
  let res;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(timeoutMs), headers: { 'User-Agent': 'imdsd-action' } });
  } catch (e) {
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000}s` : (e.cause && e.cause.message) || e.message;
    throw new Error(`download ${url}: ${why}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    const hint = res.status === 404 ? ' (no such release or asset: check the version and release-url inputs)' : '';
    throw new Error(`download ${url}: ${res.status} ${res.statusText}${hint}`);
  }
  const chunks = [];
  let n = 0;
  try {
    for await (const chunk of res.body) {
      n += chunk.length;
      if (n > maxBytes) throw new Error(`larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (e) {
    const why = e.name === 'TimeoutError' ? `not complete within ${timeoutMs / 1000}s` : e.message;
    throw new Error(`download ${url}: ${why}`);
  }
  return Buffer.concat(chunks);
}

// resolveRelease reads the release's SHA256SUMS and picks this platform's
// archive in it: imdsd-VERSION-OS-ARCH.tar.gz (windows: .zip). For
// "latest", SHA256SUMS comes through GitHub's releases/latest/download
// redirect and the archive from the release its name says (VERSION is the
// release's tag), so both come from the same release even if another is
// published in between.
async function resolveRelease(version, base, plat) {
  let dir = `${base}/latest/download`;
  if (version !== 'latest') {
    const tag = /^\d/.test(version) ? `v${version}` : version;
    dir = `${base}/download/${encodeURIComponent(tag)}`;
  }
  const sumsURL = `${dir}/SHA256SUMS`;
  const sums = (await download(sumsURL, SUMS_MAX_BYTES, SUMS_TIMEOUT_MS)).toString('utf8');
  const suffix = `-${plat.os}-${plat.arch}`;
  const found = [];
  for (const line of sums.split(/\r?\n/)) {
    // sha256sum's format: the hash, a space, a space or "*" (binary), the name.
    const m = /^([0-9a-fA-F]{64}) [ *](imdsd-(.+)-([a-z0-9]+)-([a-z0-9]+)\.(tar\.gz|zip))$/.exec(line);
    if (m && `-${m[4]}-${m[5]}` === suffix) found.push({ sha256: m[1].toLowerCase(), asset: m[2], version: m[3] });
  }
  if (found.length !== 1) {
    throw new Error(`${sumsURL} lists ${found.length ? 'several archives' : 'no archive'} for ${plat.os}/${plat.arch} (imdsd-VERSION${suffix}.tar.gz or .zip)`);
  }
  const r = found[0];
  r.url = `${base}/download/${encodeURIComponent(r.version)}/${r.asset}`;
  return r;
}

// install returns the path of the verified imdsd binary of release r: from
// the runner's tool cache when an earlier job put the same archive there,
// else downloaded, checked against SHA256SUMS and extracted (and cached).
async function install(r, plat, temp) {
  const cacheRoot = process.env.RUNNER_TOOL_CACHE;
  let cacheDir;
  if (cacheRoot) {
    // @actions/tool-cache's layout: TOOL/VERSION/ARCH, and a marker file
    // beside it once complete (here holding the archive's SHA-256).
    cacheDir = path.join(cacheRoot, 'imdsd', r.version, plat.arch);
    const cached = path.join(cacheDir, plat.exe);
    try {
      if (fs.readFileSync(`${cacheDir}.complete`, 'utf8').trim() === r.sha256 && fs.statSync(cached).isFile()) {
        log.info(`imdsd ${r.version}: ${cached} (tool cache; archive SHA-256 ${r.sha256})`);
        return cached;
      }
    } catch {
      // not cached
    }
  }
  const data = await download(r.url, ARCHIVE_MAX_BYTES, ARCHIVE_TIMEOUT_MS);
  const got = crypto.createHash('sha256').update(data).digest('hex');
  if (got !== r.sha256) {
    throw new Error(
      `checksum mismatch for ${r.asset}: SHA256SUMS says ${r.sha256}, the download from ${r.url} has ${got}; ` +
        'the archive was not extracted and nothing was started',
    );
  }
  const work = fs.mkdtempSync(path.join(temp, 'imdsd-download-'));
  fs.writeFileSync(path.join(work, r.asset), data);
  // The runner's tar: GNU tar on Linux, bsdtar on macOS, and Windows' own
  // bsdtar (which reads zip) in System32, not Git's GNU tar on PATH.
  const tar = plat.os === 'windows' ? path.join(process.env.SystemRoot || 'C:\\Windows', 'System32', 'tar.exe') : 'tar';
  const x = await run(tar, [r.asset.endsWith('.zip') ? '-xf' : '-xzf', r.asset], 120_000, process.env, work);
  if (x.code !== 0) throw new Error(`extract ${r.asset} with ${tar}: exit ${x.code ?? x.signal}: ${x.stderr.trim()}`);
  fs.rmSync(path.join(work, r.asset));
  const bin = path.join(work, r.asset.replace(/\.(tar\.gz|zip)$/, ''), plat.exe);
  if (!fs.existsSync(bin)) throw new Error(`${r.asset} has no ${path.relative(work, bin)}`);
  fs.chmodSync(bin, 0o755);
  log.info(`imdsd ${r.version}: ${r.url} (SHA-256 ${got}, as SHA256SUMS says)`);
  if (!cacheDir) return bin;
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    const cached = path.join(cacheDir, plat.exe);
    fs.copyFileSync(bin, cached);
    fs.chmodSync(cached, 0o755);
    fs.writeFileSync(`${cacheDir}.complete`, `${r.sha256}\n`);
    fs.rmSync(work, { recursive: true, force: true });
    return cached;
  } catch (e) {
    log.warning(`cannot cache imdsd in ${cacheDir}: ${e.message}`);
    return bin;
  }
}

// configText is imdsd's config file: empty but for, on Linux, an allow
// list naming the runner's own user. Loopback is open to every local user,
// and on a self-hosted runner shared by several accounts any of them could
// otherwise read the job's credentials from the endpoint; imdsd asks the
// kernel who owns each connection (NETLINK_SOCK_DIAG) and refuses the
// others with 403. Elsewhere imdsd cannot name callers (macOS) or the
// runner is one account (GitHub-hosted Windows), so nothing is added.
function configText(platform, uid) {
  let text = "# imdsd started by the GitHub Action: its flags are the rest of the configuration.\n";
  if (platform === 'linux' && Number.isInteger(uid)) {
    text += "# Only the runner's user may have the credentials (other local users get 403).\n" +
      `allow:\n  users: [${uid}]\n`;
  }
  return text;
}

// start runs imdsd in the background, in its own directory (mode 0700)
// under RUNNER_TEMP: admin socket, log, stdout, and a config file of its own (configText),
// so that a config file of the host (/etc/imdsd/config.yaml on a
// self-hosted runner with imdsd installed) does not mix in; the inputs are
// the whole configuration (IMDSD_* variables of the step still apply).
function start(bin, inputs, temp) {
  const win = process.platform === 'win32';
  const dir = fs.mkdtempSync(path.join(temp, 'imdsd-'));
  let sock = path.join(dir, win ? 'admin.token' : 'admin.sock');
  // A unix socket path has at most 104 (macOS) or 108 (Linux) bytes.
  if (!win && Buffer.byteLength(sock) > 100) sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'imdsd-')), 'admin.sock');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, configText(process.platform, process.getuid ? process.getuid() : null));
  const logPath = path.join(dir, 'imdsd.log');
  const stdoutPath = path.join(dir, 'stdout');
  const args = [
    'run',
    '--config', config,
    '--source', 'web-identity',
    '--web-identity-ci', 'github',
    '--role-arn', inputs.roleARN,
    '--web-identity-audience', inputs.audience,
    '--role-session-name', inputs.sessionName,
    '--duration', `${inputs.duration}s`,
    '--region', inputs.region,
    '--listen', inputs.listen,
    '--admin-socket', sock,
    '--log-format', 'json',
  ];
  const out = fs.openSync(stdoutPath, 'w');
  const errOut = fs.openSync(logPath, 'w');
  // Detached (its own session on unix) and with no pipe to this process,
  // so that it outlives this step and the runner does not wait for it.
  // The runner still ends it at the end of the job (orphan process
  // clean-up), should post.js not run.
  // A profile named in the step's environment is not imdsd's business
  // (AssumeRoleWithWebIdentity signs nothing), yet imdsd would load it and
  // refuse to start when this runner has no such profile.
  const env = { ...process.env };
  delete env.AWS_PROFILE;
  delete env.AWS_DEFAULT_PROFILE;
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', out, errOut], windowsHide: true, env });
  fs.closeSync(out);
  fs.closeSync(errOut);
  const state = { child, exit: null, dir, sock, config, logPath, stdoutPath };
  child.on('exit', (code, signal) => {
    state.exit = code ?? signal;
  });
  child.on('error', (e) => {
    state.exit = e.message;
  });
  return state;
}

// errorText is a status document's last_error as one line: its message,
// which names STS's error code, or the code then the message.
function errorText(e) {
  return !e.code || (e.message || '').includes(e.code) ? e.message : `${e.code}: ${e.message}`;
}

// waitReady waits until imdsd holds credentials; it returns the endpoint
// and the status document, or throws with imdsd's own words.
async function waitReady(s, bin) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let endpoint = '';
  let last = null;
  while (Date.now() < deadline) {
    if (s.exit !== null) throw new Error(`imdsd exited (${s.exit}) before it held credentials`);
    if (!endpoint) {
      // imdsd prints this line once its sources have made a first attempt.
      const m = /^export AWS_EC2_METADATA_SERVICE_ENDPOINT=(\S+)$/m.exec(fs.readFileSync(s.stdoutPath, 'utf8'));
      if (m) endpoint = m[1];
    }
    if (endpoint) {
      const st = await run(bin, ['status', '--json', '--config', s.config, '--admin-socket', s.sock], 10_000);
      try {
        last = JSON.parse(st.stdout);
      } catch {
        last = null;
      }
      if (st.code === 0 && last && last.healthy) return { endpoint, status: last };
      const e = last && last.last_error;
      if (e && e.class === 'permanent') throw new Error(`imdsd cannot get credentials: ${errorText(e)}`);
    }
    await sleep(250);
  }
  const e = last && last.last_error;
  throw new Error(
    `imdsd held no credentials ${START_TIMEOUT_MS / 1000}s after it started` +
      (e ? `; last error: ${errorText(e)}` : endpoint ? '' : ' (it never printed its endpoint)'),
  );
}

function exportProxyBypass(endpoint) {
  // botocore sends IMDS requests through HTTP_PROXY unless NO_PROXY names
  // the endpoint's host, and imdsd refuses proxied token requests.
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  const proxied = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'].some((v) => process.env[v]);
  if (!proxied) return;
  for (const v of ['NO_PROXY', 'no_proxy']) {
    const cur = process.env[v] || '';
    if (!cur.split(',').map((x) => x.trim()).includes(host)) exportVariable(v, cur ? `${cur},${host}` : host);
  }
}

async function main() {
  const inputs = readInputs();
  checkOIDC();
  warnShadowing();
  const plat = platform();
  const temp = process.env.RUNNER_TEMP || os.tmpdir();

  const r = await resolveRelease(inputs.version, inputs.releaseURL, plat);
  const bin = await install(r, plat, temp);

  const s = start(bin, inputs, temp);
  // Saved at once: post.js stops imdsd even if this step fails below.
  saveState('pid', String(s.child.pid));
  saveState('bin', bin);
  saveState('dir', s.dir);
  saveState('admin_socket', s.sock);
  saveState('config', s.config);
  let ready;
  try {
    ready = await waitReady(s, bin);
  } catch (e) {
    log.group("imdsd's log");
    log.info(tail(s.logPath, 40));
    log.endGroup();
    await stop(s.child.pid, 5000);
    saveState('stopped', 'true');
    throw e;
  }
  s.child.unref();

  const { endpoint, status } = ready;
  exportVariable('AWS_EC2_METADATA_SERVICE_ENDPOINT', endpoint);
  // With it, an IMDS token problem is an error in the SDK instead of a
  // fall-back to IMDSv1, which imdsd refuses.
  exportVariable('AWS_EC2_METADATA_V1_DISABLED', 'true');
  exportVariable('AWS_REGION', inputs.region);
  exportVariable('AWS_DEFAULT_REGION', inputs.region);
  exportProxyBypass(endpoint);
  setOutput('endpoint', endpoint);
  setOutput('aws-account-id', inputs.account);
  setOutput('admin-socket', s.sock);
  setOutput('version', r.version);

  const c = status.credentials || {};
  log.info(
    `imdsd (pid ${s.child.pid}) serves ${inputs.roleARN} at ${endpoint}: key ${c.key_id || '?'}, ` +
      `expires ${c.expires_at || '?'}, next refresh ${status.next_refresh || '?'} (a new OIDC token each time)`,
  );
  log.info(`exported AWS_EC2_METADATA_SERVICE_ENDPOINT=${endpoint}, AWS_EC2_METADATA_V1_DISABLED=true, AWS_REGION=${inputs.region}, AWS_DEFAULT_REGION=${inputs.region}`);
}

main().catch((e) => {
  log.error(e.message);
  process.exitCode = 1;
});
