package nsproxy

// StatesLen is how many upstream targets have a shared state.
func StatesLen() int {
	states.Lock()
	defer states.Unlock()
	return len(states.m)
}
