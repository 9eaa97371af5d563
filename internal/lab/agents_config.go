package lab

// StartDestinationConfig runs bin/migrate-dst on h with nothing but its
// config file, as its systemd unit does (migrate-dst --config FILE), and
// waits until it listens.
func StartDestinationConfig(h Host, bin, configFile string) (*Destination, error) {
	d := &Destination{host: h, bin: bin, args: []string{"--config", configFile}}
	return d, d.Start()
}
