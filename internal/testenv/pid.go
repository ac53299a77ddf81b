package testenv

// PID returns the process id of the `onair dev` process; its child servers
// are found with childproc.FindChild, for tests that freeze or kill them.
func (o *Onair) PID() int { return o.cmd.Process.Pid }
