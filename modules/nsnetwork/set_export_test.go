package nsnetwork

import "github.com/caddy-netns/caddy-netns/kernel/nsenter"

func nsID(ino uint64) nsenter.ID { return nsenter.ID{Ino: ino} }
