"""Serving mode: a server (``vllm serve``, or any OpenAI-compatible endpoint) driven under load.

``server`` starts and stops the managed server, ``client`` times one streamed request, ``load`` sends a
level's requests on their arrival schedule, ``run`` puts them together into a run folder.
"""
