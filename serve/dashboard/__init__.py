"""The analyst dashboard: server-rendered pages over the same engine and catalog as the API.

- **Pages, not an app.** Each page is rendered on the server from the engine's
  loaded state (the in-memory `CatalogView`) and small tables read once per
  snapshot; a page works without JavaScript, which only draws charts, keeps
  two players in step and polls a running job. Nothing is built: templates,
  one stylesheet and one script are files of this package, and the charting
  library (Plotly) is served from its installed Python package, so the
  dashboard reaches nothing outside this service (the pages' CSP says so).
- **Fast at scale.** Aggregates come from the view's arrays, DuckDB over
  small tables (assets, remasters, audits) and the runs' SQL rows; anything
  derived from a snapshot (the explore order, tag counts, on-screen text) is
  computed once per snapshot and kept. The explore grid pages by offset over
  that precomputed order, 60 lazily loaded thumbnails at a time.
- **Access** is the API's rule. On loopback nothing is asked. Beyond it, the
  token is typed once into a login form and kept as a cookie holding a keyed
  hash of it; a bearer header works too. Media for the pages is served under
  `/dashboard/media/…` for that reason, by id, from URIs the catalog gives.

The modules, one job each:

| module | job |
| --- | --- |
| `data` | reads of the catalog (`catalog.iceberg`) and run state (`StateStore`), kept per snapshot |
| `overview`, `runs`, `explore`, `audits` | what each page shows, as a template's context |
| `people` | the People page: its context, routes, face crops and its own login (the token even on loopback) |
| `charts` | the Plotly figures |
| `auth` | who may see the pages: the login and its cookie |
| `routes` | the FastAPI router: templates rendered, media and static files served |
| `formats`, `urls`, `static_files` | the templates' filters, the dashboard's URLs, its static files |
"""

from serve.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
