"""The dailies page: `review.html` in every film folder, to watch and judge the film."""
