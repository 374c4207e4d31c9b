"""The dailies page: `review.html` in every film folder, to watch and judge the film."""

from tasks.review.commands import RunOptions
from tasks.review.write import REVIEW_PAGE, ReviewError, write_review

__all__ = ["REVIEW_PAGE", "ReviewError", "RunOptions", "write_review"]
