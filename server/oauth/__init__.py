"""Third-party login (微信、微博、QQ快速登录) through the OAuth 2.0 code flow.

A browser or the phone app proves who it is at a provider; the server trades the
provider's code for the provider's user id and logs in the account linked to it.
"""
