"""Files served under ASGI without Django's fallback for synchronous iterators.

A ``FileResponse`` (whitenoise's static files, the instances' ringtone files) streams its
file through a synchronous iterator. Under ASGI Django cannot iterate that from the event
loop: it warns ("StreamingHttpResponse must consume synchronous iterators…"), then reads
the whole file into a list in its one thread for synchronous code (the views', and the
engine's when it runs in the serving process). This middleware gives such a response an
asynchronous iterator instead: the file is read block by block in the event loop's
default executor, and sent as it is read. Under WSGI nothing changes.
"""

from collections.abc import AsyncIterator, Callable
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, HttpResponseBase

BLOCK_SIZE = 64 * 1024  # what Django's ASGI handler sends at a time


async def blocks(file: IO[bytes], size: int) -> AsyncIterator[bytes]:
    """``file``'s content, ``size`` bytes at a time, each read outside the event loop (and
    off the thread for synchronous code). The response closes the file once sent."""
    read = sync_to_async(file.read, thread_sensitive=False)
    while block := await read(size):
        yield block


class AsyncFileResponseMiddleware:
    """Put it before (outside) the middleware that makes FileResponses (whitenoise's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        if isinstance(request, ASGIRequest) and isinstance(response, FileResponse) and not response.is_async:
            file = response.file_to_stream
            if file is not None:
                response.streaming_content = blocks(file, BLOCK_SIZE)
        return response
