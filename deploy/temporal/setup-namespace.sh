#!/bin/sh
# After the Temporal server is up (temporal-setup service of docker-compose.yml): the namespace the pipeline runs
# in, and the search attributes the trade workflows set (src/workflows/shared.ts), so the Web UI and
# `temporal workflow list --query 'Symbol="NVDA"'` can filter trades. Idempotent: existing ones are kept.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
ns="$TEMPORAL_NAMESPACE"
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
  temporal operator namespace create --namespace "$ns" --retention 7d
existing="$(temporal operator search-attribute list --namespace "$ns")"
for sa in Symbol Side Strategy TradeStatus; do
  if echo "$existing" | grep -qw "$sa"; then
    echo "search attribute $sa exists"
  else
    temporal operator search-attribute create --namespace "$ns" --name "$sa" --type Keyword
  fi
done
temporal operator search-attribute list --namespace "$ns"
