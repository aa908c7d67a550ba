"""The CPMS's own OCPP 1.6J gateway (CONTRACT section 11): chargers' WebSockets in, ingest's
events and authorizations out, commands from the commands service to the chargers."""
from services.gateway.app import create_gateway_app

__all__ = ["create_gateway_app"]
