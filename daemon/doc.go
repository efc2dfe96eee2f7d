// Package daemon is the imdsd command without its process: the command
// line (one file per sub-command), the configuration (file, IMDSD_*
// variables, flags), the wiring of rotators to the IMDS handler, the admin
// API, signals and the kardianos/service program. cmd/imdsd is its main.
//
// It is the only package that knows imds, rotator and install together;
// none of them imports it.
package daemon
