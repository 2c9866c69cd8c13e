package agency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/protocol"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", map[string]string{"CLI_ID": "3"}, Config{ID: 3, ServerAddress: "server:12345",
			DataPath: ".data/agency-3.csv", BatchMaxAmount: protocol.MaxBatchBets, ConnectTimeout: 30 * time.Second,
			ReplyTimeout: 30 * time.Second, MaxRetries: 10, LogLevel: "INFO"}, ""},
		{"batch amount kept when it fits", map[string]string{"CLI_ID": "1", "CLI_BATCH_MAXAMOUNT": "50",
			"CLI_DATA_PATH": "x.csv", "CLI_SERVER_ADDRESS": "h:1", "CLI_CONNECT_TIMEOUT": "1s"},
			Config{ID: 1, ServerAddress: "h:1", DataPath: "x.csv", BatchMaxAmount: 50, ConnectTimeout: time.Second,
				ReplyTimeout: 30 * time.Second, MaxRetries: 10, LogLevel: "INFO"}, ""},
		{"batch amount over the frame limit is clamped", map[string]string{"CLI_ID": "1", "CLI_BATCH_MAXAMOUNT": "100000"},
			Config{ID: 1, ServerAddress: "server:12345", DataPath: ".data/agency-1.csv", BatchMaxAmount: protocol.MaxBatchBets,
				ConnectTimeout: 30 * time.Second, ReplyTimeout: 30 * time.Second, MaxRetries: 10, LogLevel: "INFO"}, ""},
		{"id required", map[string]string{}, Config{}, "CLI_ID"},
		{"id zero", map[string]string{"CLI_ID": "0"}, Config{}, "CLI_ID=0"},
		{"id not a number", map[string]string{"CLI_ID": "uno"}, Config{}, `"ID" of type "int": strconv.ParseInt: parsing "uno"`},
		{"zero connect timeout", map[string]string{"CLI_ID": "1", "CLI_CONNECT_TIMEOUT": "0s"}, Config{}, "CLI_CONNECT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
