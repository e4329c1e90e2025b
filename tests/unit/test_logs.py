import io
import logging

from bot.app.logs import setup_logging

TOKEN = "123456:SECRET-token"


def test_token_is_redacted_from_messages_and_tracebacks() -> None:
    setup_logging(TOKEN)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("frontdesk.test")
    log.warning("GET https://api.telegram.org/bot%s/getMe failed", TOKEN)
    try:
        raise ConnectionError(f"https://api.telegram.org/bot{TOKEN}/sendMessage")
    except ConnectionError:
        log.exception("request failed")
    text = stream.getvalue()
    assert TOKEN not in text and text.count("<token>") == 2
    logging.getLogger().handlers.clear()
