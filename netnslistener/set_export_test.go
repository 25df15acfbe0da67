package netnslistener

import "github.com/caddy-netns/caddy-netns/netnslistener/nsenter"

func nsID(ino uint64) nsenter.ID { return nsenter.ID{Ino: ino} }
