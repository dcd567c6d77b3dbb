"""HTML pages: rider pages (home, stops, routes, card; kk / ru / en), the smart-stop display and staff pages."""

from __future__ import annotations

from flask import Flask

__all__ = ["register_web"]


def register_web(app: Flask) -> None:
    from app.logs import configure_logging
    from app.web.display import bp as display_bp
    from app.web.headers import install_security_headers
    from app.web.i18n import init_i18n
    from app.web.pwa import register_pwa
    from app.web.rider import register_rider
    from app.web.staff import bp as staff_bp
    from app.web.vendor import register_vendor

    configure_logging(app)  # the app's log records, pages' and API's alike, are scrubbed of secrets
    install_security_headers(app)  # on every Flask response; BoardPolls adds the same ones itself
    init_i18n(app)
    register_rider(app)
    register_pwa(app)  # manifest, service worker and icons of the installable rider app
    app.register_blueprint(display_bp)
    app.register_blueprint(staff_bp)
    register_vendor(app)  # Leaflet from its npm package, for the rider pages' street map
