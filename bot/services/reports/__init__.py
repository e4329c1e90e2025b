"""The numbers managers look at: /stats, /org's month, the chart and the monthly act.

  stats    the figures of a period (their definitions are written there)
  act      the act of performed work of one company for a month
  render   the chart, the act as HTML and CSV, and their files
  jobs     sending them: /stats, /report and the monthly acts job

The queries are in storage.repos.reports; periods in bot.domain.periods.
"""
