"""Enterprise certification (企业认证): binding portal users to 一证通 enterprises.

This package holds the relying-party side of 北京市统一身份认证平台 (一证通): the
OpenID Connect client in ``oidc`` that proves which enterprise a person logged in
as, its settings in ``config`` and its failures in ``errors``.
"""
