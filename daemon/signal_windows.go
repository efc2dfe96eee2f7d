package daemon

import "os"

// notifyHangup does nothing: Windows has no SIGHUP; restart the service to
// reload.
func notifyHangup(chan<- os.Signal) {}
