"""The REST API under /api/v1/ (DRF). How to add an endpoint:

1. A view in a module of this package (one per family), thin like a page: parse with a serializer,
   call one service function (the same one the page calls), answer with a serializer.
2. `permission_classes = [IsAuthenticated, allowed("family.action")]` (portal/api/frame.py), with the
   action in models_service.access.POLICY; querysets come from a service that filters by user, so
   an object the caller may not see is a 404.
3. Pass `source="api"` to services that write the audit log.
4. A route in portal/api/urls.py, and its line in tests/access/routes.py (the access matrix fails
   without it). Errors need nothing: portal/api/errors.py shapes them all.
"""
