#!/usr/bin/env bash
# monitoring_rules.sh DIR - the alert rules in DIR (tools/monitoring/) are
# valid Prometheus rules (promtool check rules), their alerts fire on the
# series of capvault.rules.test.yml (promtool test rules), and the Grafana
# dashboard is JSON. Skipped (77) without promtool (Debian: prometheus).
set -euo pipefail
dir=$1
if ! command -v promtool >/dev/null; then
	echo "promtool missing (apt-get install prometheus): skipped"
	exit 77
fi
promtool check rules "$dir/capvault.rules.yml"
(cd "$dir" && promtool test rules capvault.rules.test.yml)
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
	"$dir/capvault-dashboard.json"
