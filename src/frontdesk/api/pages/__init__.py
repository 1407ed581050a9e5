"""The pages people look at, served by frontdesk itself: the embeddable in-app inbox (and its
demo page), the hosted preference centre, and the operator console. Server-rendered HTML
(Jinja) with progressive enhancement; no CDN, nothing fetched at run time."""
