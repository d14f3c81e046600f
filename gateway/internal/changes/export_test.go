package changes

// IdleCheck lets tests shorten the listener's idle check.
var IdleCheck = &idleCheck
