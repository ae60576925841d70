# shellcheck shell=bash disable=SC2154 # variables set by test.sh, which sources this file
# The admission webhook's chart templates (controller.admissionWebhooks.*),
# sourced by test.sh after its edge-gateway scenarios: it uses test.sh's
# check, validate, refuses, $helm, $py, $eg, $here, $work and $values.
#
#   - renders with the webhook on (hook Jobs), with cert-manager, and with
#     ingress-nginx's kube-webhook-certgen image: helm lint --strict,
#     kubernetes-validate (cert-manager's kinds aside), the general facts of
#     check_rendered.py (eg-clusterip) and the webhook's (check_webhook.py);
#   - off by default: nothing of it rendered;
#   - values that must be refused.

section "charts/edge-gateway: admission webhook"

# webhook_scenario NAME VALUES...: lint, render, validate, check facts.
webhook_scenario() {
    local name=$1
    shift
    local rendered=$work/$name.yaml
    check "lint     $name" "$helm" lint --strict "$eg" --namespace ingress-nginx "$@"
    if "$helm" template edge-gateway "$eg" --namespace ingress-nginx "$@" >"$rendered" 2>"$work/render-err"; then
        # kubernetes-validate has no schema for cert-manager's kinds.
        "$py" - "$rendered" "$work/$name-core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and not d["apiVersion"].startswith("cert-manager.io/")]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
        check "validate $name" validate "$work/$name-core.yaml"
        check "facts    $name (general)" "$py" "$here/check_rendered.py" eg-clusterip "$rendered"
        check "facts    $name (webhook)" "$py" "$here/check_webhook.py" "$name" "$rendered"
    else
        check "render   $name" show_and_fail "$work/render-err"
    fi
}

clusterip=(--set controller.service.type=ClusterIP)
webhook_scenario eg-webhook-off "${clusterip[@]}"
webhook_scenario eg-webhook "${clusterip[@]}" -f "$values/eg-webhook.yaml"
webhook_scenario eg-webhook-cert-manager "${clusterip[@]}" -f "$values/eg-webhook-cert-manager.yaml"
webhook_scenario eg-webhook-certgen-image "${clusterip[@]}" -f "$values/eg-webhook-certgen-image.yaml"

on=(--set controller.admissionWebhooks.enabled=true)
check "refuses  a webhook port that is another port of the controller (the HTTPS one)" \
    refuses "admissionWebhooks.port 443 is already a port" "$helm" template x "$eg" "${on[@]}" \
    --set controller.admissionWebhooks.port=443
check "refuses  an unknown failurePolicy" \
    refuses "failurePolicy" "$helm" template x "$eg" "${on[@]}" --set controller.admissionWebhooks.failurePolicy=Sometimes
check "refuses  a timeoutSeconds above the API server's 30" \
    refuses "timeoutSeconds" "$helm" template x "$eg" "${on[@]}" --set controller.admissionWebhooks.timeoutSeconds=60
check "refuses  a relative certificate path" \
    refuses "certificate" "$helm" template x "$eg" "${on[@]}" --set controller.admissionWebhooks.certificate=cert
