package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*Config)
		wantErr string
	}{
		{"defaults", map[string]string{}, func(c *Config) {}, ""},
		{"everything set", map[string]string{"SERVER_PORT": "4000", "SERVER_AGENCIES": "10",
			"SERVER_STORAGE_PATH": "/tmp/x.csv", "SERVER_LOG_LEVEL": "DEBUG", "SERVER_IDLE_TIMEOUT": "5s",
			"SERVER_MAX_CONNECTIONS": "3", "SERVER_HOST": "127.0.0.1"}, func(c *Config) {
			*c = Config{Host: "127.0.0.1", Port: 4000, Agencies: 10, StoragePath: "/tmp/x.csv", LogLevel: "DEBUG",
				IdleTimeout: 5 * time.Second, MaxConnections: 3}
		}, ""},
		{"port not a number", map[string]string{"SERVER_PORT": "abc"}, nil, `"Port" of type "int": strconv.ParseInt: parsing "abc"`},
		{"port out of range", map[string]string{"SERVER_PORT": "70000"}, nil, "SERVER_PORT=70000"},
		{"no agencies", map[string]string{"SERVER_AGENCIES": "0"}, nil, "SERVER_AGENCIES=0"},
		{"negative idle timeout", map[string]string{"SERVER_IDLE_TIMEOUT": "-1s"}, nil, "SERVER_IDLE_TIMEOUT"},
		{"every error at once", map[string]string{"SERVER_AGENCIES": "0", "SERVER_MAX_CONNECTIONS": "0"}, nil,
			"SERVER_AGENCIES=0: want 1..1000000\nSERVER_MAX_CONNECTIONS=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			want := Config{Port: 12345, Agencies: 5, StoragePath: "./bets.csv", LogLevel: "INFO",
				IdleTimeout: 60 * time.Second, MaxConnections: 2048}
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}
