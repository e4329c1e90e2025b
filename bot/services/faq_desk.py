"""The FAQ within one update: suggestions after a registration, /faq, the buttons, staff's
/kb changes, drafts from closed incidents, phrasings learnt from clients."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messaging.callbacks import FaqAction, KbAction
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, Keyboard, button
from bot.services.faq import (
    KB_REVISION,
    PHRASING_LIMIT,
    TG_IMAGE,
    TOP_LIMIT,
    ArticleInfo,
    FaqError,
    FaqService,
    article_of,
    content_hash,
    language_of,
    slug_for,
)
from kb.articles import Article, image_file
from kb.text import normalize
from storage.hooks import after_commit
from storage.models import Client, FaqArticle, FaqStats, FaqSuggestion, Ticket
from storage.repos.counters import next_number
from storage.repos.faq import FaqArticles, FaqSuggestions
from storage.repos.tickets import TicketMessages, Tickets


class FaqDesk:
    """The FAQ within one update's transaction."""

    def __init__(self, service: FaqService, session: AsyncSession, notifier: Notifier) -> None:
        self.service = service
        self.session = session
        self.notify = notifier
        self.clock = service.clock
        self.texts = notifier.texts

    # -- clients ------------------------------------------------------------------------

    async def best(self, query: str, language: str, limit: int = 1) -> list[Article]:
        """The best articles for a query, those in the client's language first."""
        hits = await self.service.search(query, limit=max(limit, 5))
        articles = [a for a in (self.service.published(h.id) for h in hits) if a is not None]
        articles.sort(key=lambda a: a.lang != language)  # stable: score order kept within
        return articles[:limit]

    async def suggest(self, ticket: Ticket, client: Client, content: Content) -> None:
        """After an incident is registered: offer the best article, if one is good enough."""
        if not content.text.strip() or not len(self.service.index):
            return
        hits = await self.service.search(content.text, limit=5)
        if not hits:
            return
        preferred = [h for h in hits if (a := self.service.published(h.id)) and a.lang ==
                     client.language]
        hit = (preferred or hits)[0]
        article = self.service.published(hit.id)
        if article is None:
            return
        suggestion = await FaqSuggestions(self.session).add(FaqSuggestion(
            ticket_id=ticket.id, client_id=client.id, article_id=article.id, score=hit.score,
            query=content.text, created_at=self.clock(),
        ))
        (await self._stats(article.id)).suggested += 1
        label = self.texts.label
        keyboard: Keyboard = [[
            button(label(client.language, "faq_solved"),
                   FaqAction(action="ok", suggestion=suggestion.id).pack()),
            button(label(client.language, "faq_not_that"),
                   FaqAction(action="no", suggestion=suggestion.id).pack()),
        ]]
        await self.send_article(client, article, "faq_suggestion", ticket=ticket,
                                keyboard=keyboard)

    async def send_article(
        self, client: Client, article: Article, message: str, *, ticket: Ticket | None = None,
        keyboard: Keyboard | None = None, **context: Any,
    ) -> None:
        """An article to a client: its screenshot (if any), then the text with the buttons."""
        photo = self.photo_of(article)
        if photo is not None:
            await self.notify.out.call(
                client.chat_id, "sendPhoto", {"photo": photo}, priority=PRIORITY_REPLY,
            )
        await self.notify.to_client(ticket, client, message, article=article,
                                    priority=PRIORITY_REPLY, keyboard=keyboard, **context)

    def photo_of(self, article: Article) -> Any:
        image = article.image
        if not image:
            return None
        if image.startswith(TG_IMAGE):
            return image[len(TG_IMAGE):]
        if image.startswith(("http://", "https://")):
            return image
        found = image_file(image, self.service.image_roots)
        if found is None or not found.is_file():
            return None
        return {"$file": str(found)}

    async def top(self, language: str, limit: int = TOP_LIMIT) -> list[Article]:
        """The most useful published articles: most often solved, then most often offered."""
        stats = await FaqArticles(self.session).all_stats()
        articles = [a for a in map(self.service.article, self.service.published_ids()) if a]
        mine = [a for a in articles if a.lang == language] or articles

        def usefulness(article: Article) -> tuple[int, int, str]:
            s = stats.get(article.id)
            return (-(s.solved if s else 0), -(s.suggested if s else 0), article.id)

        return sorted(mine, key=usefulness)[:limit]

    async def client_answer(self, client: Client, suggestion_id: int, solved: bool
                            ) -> tuple[FaqSuggestion, Ticket]:
        """Record "This solved it" / "Not that" on a suggestion. Only the client it was made
        to may answer, and only once; the caller (the handler) resolves the incident through
        `Desk.resolve_by_faq` when it was solved."""
        suggestion = await FaqSuggestions(self.session).get(suggestion_id)
        if suggestion is None or suggestion.client_id != client.id:
            raise FaqError("button_invalid")
        if suggestion.outcome is not None:
            raise FaqError("already_answered")
        suggestion.outcome = "solved" if solved else "rejected"
        suggestion.answered_at = self.clock()
        stats = await self._stats(suggestion.article_id)
        if solved:
            stats.solved += 1
        else:
            stats.rejected += 1
        ticket = await Tickets(self.session).by_id(suggestion.ticket_id)
        return suggestion, ticket

    async def not_that(self, suggestion: FaqSuggestion, ticket: Ticket, client: Client) -> None:
        await self.notify.to_client(ticket, client, "faq_not_that", priority=PRIORITY_REPLY)
        await self.notify.staff_line(ticket, "kb_rejected_line",
                                     article_id=suggestion.article_id)

    async def offer_phrasing(self, suggestion: FaqSuggestion, ticket: Ticket) -> None:
        """Staff get the client's words as a new phrasing of the article that helped."""
        article = self.service.article(suggestion.article_id)
        words = suggestion.query.strip()
        if article is None or not words or len(words) > PHRASING_LIMIT:
            return
        known = {normalize(p) for p in (article.question, *article.alt)}
        if normalize(words) in known:
            return
        suggestion.phrasing = "offered"
        accept = button(self.texts.label(self.texts.default_language, "kb_accept_phrasing"),
                        KbAction(action="alt", ref=suggestion.id).pack())
        await self.notify.staff_line(ticket, "kb_phrasing_offer", article=article, text=words,
                                     keyboard=[[accept]])

    # -- staff --------------------------------------------------------------------------

    async def _stats(self, article_id: str) -> FaqStats:
        repo = FaqArticles(self.session)
        stats = await repo.stats_of(article_id)
        if stats is None:
            stats = repo.add_stats(FaqStats(article_id=article_id, suggested=0, solved=0,
                                            rejected=0, updated_at=self.clock(), extra_alt=[]))
        return stats

    async def infos(self, ids: Iterable[str] | None = None) -> list[ArticleInfo]:
        stats = await FaqArticles(self.session).all_stats()
        result = []
        for article_id in (self.service.all_ids() if ids is None else ids):
            article = self.service.article(article_id)
            if article is None:
                continue
            s = stats.get(article_id)
            result.append(ArticleInfo(
                article=article, source=self.service.source(article_id) or "db",
                draft=article_id in self.service.drafts,
                suggested=s.suggested if s else 0, solved=s.solved if s else 0,
                rejected=s.rejected if s else 0, updated_at=s.updated_at if s else None,
            ))
        return result

    async def stale(self) -> list[tuple[ArticleInfo, str]]:
        """Articles to fix or remove: not updated for `stale_days`, or often "Not that"."""
        config = self.service.config
        old = self.clock() - timedelta(days=config.stale_days)
        found = []
        for info in await self.infos():
            if info.suggested >= config.reject_min_suggested and (
                info.rejected / info.suggested >= config.reject_ratio
            ):
                found.append((info, "rejected"))
            elif info.updated_at is not None and info.updated_at < old:
                found.append((info, "old"))
        return found

    async def new_id(self, question: str, *, draft: bool = False) -> str:
        """A readable id for a published article; a random one for a draft, which holds a
        client's words and must not be guessed from them."""
        base = f"draft-{secrets.token_hex(8)}" if draft else slug_for(question)
        candidate, n = base, 1
        repo = FaqArticles(self.session)
        while (self.service.source(candidate) is not None
               or await repo.get(candidate) is not None):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def save(
        self, *, article_id: str | None, question: str, alt: Sequence[str], answer: str,
        image: str | None, author: int | None, draft: bool = False,
        source_ticket_id: int | None = None,
    ) -> Article:
        """Create (article_id None) or change an article written in chat."""
        now = self.clock()
        if article_id is None:
            row = FaqArticles(self.session).add(FaqArticle(
                id=await self.new_id(question, draft=draft), lang=language_of(question),
                question="", alt=[], answer="", tags=[], draft=draft,
                source_ticket_id=source_ticket_id, created_by=author, created_at=now,
            ))
        else:
            found = await self._db_row(article_id)
            row = found
        row.question, row.alt, row.answer = question.strip(), [a.strip() for a in alt], answer
        row.lang = language_of(question)
        row.image = image
        stats = await self._stats(row.id)
        stats.updated_at = now
        article = article_of(row)
        stats.content_hash = content_hash(article)
        is_draft = row.draft
        await self._changed(lambda: self.service._put(article, draft=is_draft))
        return article

    async def _changed(self, apply: Callable[[], None]) -> None:
        """Count a change of the KB (other processes reload on seeing the revision move) and
        apply it to this process's index once it is committed."""
        revision = await next_number(self.session, KB_REVISION)

        def applied() -> None:
            apply()
            self.service._advance(revision)

        after_commit(self.session, applied)

    async def _db_row(self, article_id: str) -> FaqArticle:
        row = await FaqArticles(self.session).get(article_id)
        if row is None:
            if self.service.source(article_id) == "file":
                raise FaqError("in_file", id=article_id, path=str(self.service.config.path))
            raise FaqError("no_article", id=article_id)
        return row

    async def editable(self, article_id: str) -> Article:
        """An article staff may change in chat (one written in chat)."""
        row = await self._db_row(article_id)
        return article_of(row)

    async def publish(self, article_id: str) -> Article:
        row = await self._db_row(article_id)
        if not row.draft:
            raise FaqError("not_draft", id=article_id)
        row.draft = False
        (await self._stats(article_id)).updated_at = self.clock()
        article = article_of(row)
        await self._changed(lambda: self.service._put(article, draft=False))
        return article

    async def delete(self, article_id: str) -> None:
        await self._db_row(article_id)
        await FaqArticles(self.session).delete(article_id)
        await self._changed(lambda: self.service._drop(article_id))

    async def draft_from_ticket(self, ticket: Ticket, author: int | None) -> Article:
        """`/close 42 faq`: the staff resolution as the answer, the client's first words as
        the question; a draft until staff publish it."""
        messages = TicketMessages(self.session)
        first = await messages.first_from_client(ticket.id, with_text=True)
        answer = ticket.resolution or await messages.last_staff_text(ticket.id)
        if first is None or not answer:
            raise FaqError("nothing_to_draft", number=ticket.number)
        return await self.save(article_id=None, question=first.text, alt=[], answer=answer,
                               image=None, author=author, draft=True, source_ticket_id=ticket.id)

    async def accept_phrasing(self, suggestion_id: int) -> tuple[Article, str]:
        suggestion = await FaqSuggestions(self.session).get(suggestion_id)
        if suggestion is None or suggestion.phrasing != "offered":
            raise FaqError("button_invalid")
        article_id, words = suggestion.article_id, suggestion.query.strip()
        if self.service.article(article_id) is None:
            raise FaqError("no_article", id=article_id)
        suggestion.phrasing = "accepted"
        row = await FaqArticles(self.session).get(article_id)
        if row is not None:
            row.alt = [*row.alt, words]
        else:
            stats = await self._stats(article_id)
            stats.extra_alt = [*stats.extra_alt, words]
        await self._changed(lambda: self.service._learn(article_id, words))
        article = self.service.article(article_id)
        assert article is not None
        return article, words


# -- moving articles between files and the database (the `kb import|export` commands) --
