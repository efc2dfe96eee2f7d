'use strict';
// The post step of the imdsd GitHub Action (action.yml, post-if: always()):
// print what imdsd served (imdsd status), stop it (SIGTERM, then SIGKILL
// after 10 s), and remove its directory. It never fails the job: by now
// the job's work is done, and a problem here is a warning.

const fs = require('node:fs');
const path = require('node:path');
const { getState, log, run, tail, alive, stop } = require('./lib.js');

const STOP_GRACE_MS = 10_000;

async function main() {
  const pid = Number(getState('pid'));
  const bin = getState('bin');
  const dir = getState('dir');
  const sock = getState('admin_socket');
  const config = getState('config');
  if (!pid) {
    log.info('imdsd was not started; nothing to stop');
    return;
  }
  // imdsd's directory, and the admin socket's when it is elsewhere (a
  // long RUNNER_TEMP).
  const cleanUp = () => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (sock && dir && path.dirname(sock) !== dir) fs.rmSync(path.dirname(sock), { recursive: true, force: true });
  };
  if (getState('stopped') === 'true' && !alive(pid)) {
    log.info('imdsd was stopped by the failed main step');
    cleanUp();
    return;
  }
  let healthy = false;
  if (alive(pid)) {
    const args = ['status', '--admin-socket', sock];
    if (config) args.push('--config', config);
    try {
      const st = await run(bin, args, 10_000);
      healthy = st.code === 0;
      log.info('imdsd status:');
      log.info((st.stdout + st.stderr).trimEnd());
    } catch (e) {
      log.warning(`imdsd status: ${e.message}`);
    }
  } else {
    log.warning(`imdsd (pid ${pid}) was no longer running`);
  }
  const how = await stop(pid, STOP_GRACE_MS);
  switch (how) {
    case 'exited':
      log.info(`imdsd (pid ${pid}) stopped`);
      break;
    case 'gone':
      break;
    case 'killed':
      log.warning(`imdsd (pid ${pid}) did not stop within ${STOP_GRACE_MS / 1000}s of SIGTERM and was killed`);
      break;
    default:
      log.warning(`imdsd (pid ${pid}) is still running after SIGKILL`);
  }
  if (!healthy || how !== 'exited') {
    log.group("imdsd's log (last 40 lines)");
    log.info(tail(path.join(dir, 'imdsd.log'), 40));
    log.endGroup();
  }
  if (how !== 'survived') cleanUp();
}

main().catch((e) => {
  log.warning(`stopping imdsd: ${e.message}`);
});
