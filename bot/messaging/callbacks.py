"""Inline-button data. Everything in it is untrusted: handlers check it against the database."""

from aiogram.filters.callback_data import CallbackData


class TicketAction(CallbackData, prefix="t"):
    """A staff button about one incident: take, close, reopen, unlink (from its problem)."""

    action: str
    number: int


class ClientAction(CallbackData, prefix="ca"):
    """A client's button about one of their incidents: notfixed; other ("mine is something
    else": unlinked from the known problem, an incident of its own)."""

    action: str
    number: int


class UrgentAction(CallbackData, prefix="u"):
    """A client's "This is urgent" on the registration message of incident `number`."""

    number: int


class PickTicket(CallbackData, prefix="p"):
    """Which open incident a client's message belongs to; number 0 means a new one."""

    number: int
    message_id: int


class ContactChoice(CallbackData, prefix="c"):
    action: str  # skip


class FaqAction(CallbackData, prefix="fq"):
    """A client's answer to an FAQ suggestion: ok (this solved it) or no (not that)."""

    action: str
    suggestion: int


class FaqShow(CallbackData, prefix="fs"):
    """Show one FAQ article to a client (from the /faq lists)."""

    article: str


class KbAction(CallbackData, prefix="kb"):
    """A staff button about the FAQ: alt (accept a client's phrasing of suggestion `ref`)."""

    action: str
    ref: int


class RateAction(CallbackData, prefix="rt"):
    """A client's rating of closed incident `number`: score 5 (Excellent) ... 1 (Terrible);
    0 = "no comment" on the follow-up question."""

    number: int
    score: int


class QualityAnswer(CallbackData, prefix="qc"):
    """An answer to quarterly check `delivery` (a quality_deliveries row): "1".."5" or
    "talk" (Let's talk: a call-back incident). Delivery 0 is an admin's /quality test."""

    delivery: int
    answer: str


class BellTake(CallbackData, prefix="bt"):
    """"Take" on a staff alert (bot/services/bell.py): kind "r" (rating `ref`) or "q"
    (quality delivery `ref`)."""

    kind: str
    ref: int


class CompanyMove(CallbackData, prefix="cm"):
    """Staff's answer to a client who came through another company's invite link: action
    "confirm" (move `client` to `company`) or "keep" (they stay where they are)."""

    action: str
    client: int
    company: int


class ProblemLink(CallbackData, prefix="pl"):
    """Staff: link the open incidents numbered first..last to problem `problem` (a card's
    button: one incident; the surge digest's: the incidents it lists)."""

    problem: int
    first: int
    last: int


class ProblemAction(CallbackData, prefix="pa"):
    """Staff: a button about problem `number`: close (monitoring says it is resolved)."""

    action: str
    number: int


class ProblemSuggest(CallbackData, prefix="ps"):
    """Staff: accept the desk's suggestion led by incident `number` (it becomes a problem,
    the others suggested with it are linked)."""

    number: int
