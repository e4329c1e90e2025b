"""Repositories, one module per aggregate: every query of the bot lives here.

They work in a session the caller owns (one transaction per unit of work): they flush
when the caller needs ids or counts, never commit, and return models or small typed
rows. Callers import from the module (`from storage.repos.tickets import Tickets`).
"""
