"""An app that passes the production check, and a Kubernetes manifest that deploys it well."""

from __future__ import annotations

READY_APP = """
from chirp import App, AppConfig, csrf_token, secure_stack

config = AppConfig.from_env(csp_nonce_enabled=True, metrics_enabled=True,
                            strict_transport_security="max-age=63072000; includeSubDomains")
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 45
      securityContext: {runAsNonRoot: true}
      containers:
        - name: web
          image: web:1
          command: ["chirp", "run", "app:app", "--production", "--workers", "2"]
          livenessProbe: {httpGet: {path: /health, port: 8000}}
          readinessProbe: {httpGet: {path: /ready, port: 8000}}
"""
