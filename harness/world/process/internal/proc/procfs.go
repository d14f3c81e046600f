package proc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ListensOn reports whether pid holds a listening TCP socket on port (IPv4 or IPv6):
// the socket's inode from /proc/net/tcp* appears among the process's descriptors.
func ListensOn(pid, port int) bool {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(link[len("socket:["):], "]")] {
			return true
		}
	}
	return false
}

// listeningInodes returns the inodes of sockets in state LISTEN (0A) on port.
func listeningInodes(port int) map[string]bool {
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) > 9 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				inodes[fields[9]] = true
			}
		}
		f.Close()
	}
	return inodes
}

// GroupMembers lists the live (not zombie) processes of a process group.
func GroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid && !Zombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// drainGroup SIGKILLs a process group until no live member is left (bounded).
func drainGroup(pgid int) error {
	deadline := time.Now().Add(StopGrace)
	for {
		members := GroupMembers(pgid)
		if len(members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has members %v after SIGKILL", pgid, members)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
}

// Zombie reports whether pid has exited but not been reaped (its parent may be gone
// to a PID 1 that never reaps).
func Zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// StartTime is a process's start time in clock ticks since boot (field 22 of
// /proc/<pid>/stat): with the pid it names a process even after pids are reused.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid, 22)
	if err != nil {
		return 0, err
	}
	return f[0], nil
}

// userHZ is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux the
// harness runs on (the kernel's own tick rate does not change it).
const userHZ = 100

// CPU is the processor time a process has used (user + system, fields 14 and 15 of
// /proc/<pid>/stat) and that of its children it has waited for (fields 16 and 17).
func CPU(pid int) (own, reaped time.Duration, err error) {
	f, err := statFields(pid, 14, 15, 16, 17)
	if err != nil {
		return 0, 0, err
	}
	tick := time.Second / userHZ
	return time.Duration(f[0]+f[1]) * tick, time.Duration(f[2]+f[3]) * tick, nil
}

// Parent is a process's parent pid (field 4 of /proc/<pid>/stat).
func Parent(pid int) (int, error) {
	f, err := statFields(pid, 4)
	if err != nil {
		return 0, err
	}
	return int(f[0]), nil
}

// statFields reads numeric fields of /proc/<pid>/stat by their number in proc(5).
func statFields(pid int, numbers ...int) ([]uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' split cleanly,
	// starting at field 3.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	out := make([]uint64, len(numbers))
	for j, n := range numbers {
		if n-3 >= len(fields) || n < 3 {
			return nil, fmt.Errorf("short /proc/%d/stat", pid)
		}
		if out[j], err = strconv.ParseUint(fields[n-3], 10, 64); err != nil {
			return nil, fmt.Errorf("/proc/%d/stat field %d: %w", pid, n, err)
		}
	}
	return out, nil
}
