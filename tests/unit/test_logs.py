import io
import logging

from bot.app.logs import setup_logging
from bot.domain.redact import keep_secret, redact

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


def test_one_redaction_for_logs_and_stored_errors() -> None:
    keep_secret("4242:SECRET-OF-THIS-DESK")
    real_shape = "1234567890:AAH" + "x" * 32
    text = f"GET /bot4242:SECRET-OF-THIS-DESK/getMe and /bot{real_shape}/sendMessage"
    assert redact(text) == "GET /bot<token>/getMe and /bot<token>/sendMessage"
    assert redact("incident 12345: at 10:30") == "incident 12345: at 10:30"
