"""Integrations: other systems' writes (idempotency), later webhooks and ERP/CRM mapping."""
