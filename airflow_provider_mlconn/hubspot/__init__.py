"""HubSpot facts: object types, association type ids, property specs."""
