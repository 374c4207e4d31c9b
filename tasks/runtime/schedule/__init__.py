"""Model-aware GPU scheduling: which waiting render gets a free slot, and on which server.

A film uses three model families: `image` (keyframes), `ltx` (sequences) and `ace_step`
(score cues). Switching a GPU between them reloads tens of GB of weights (about a minute on
real hardware), so the order in which waiting renders get a slot decides how much GPU time
goes to loading. Whenever a server has a free slot, the policy picks, in this order:

1. Starving first. A render whose family has not been served anywhere for `patience_loads`
   of its load times, while it waited, goes next on any free server (the server's own
   family first, else the family waiting longest; within it, as in 2). This aging bound
   keeps affinity from holding a chain back for long.
2. Affinity. A render of the family the server has loaded goes next, no load: the one with
   the most of its chain behind it (the film ends sooner), the oldest among equals.
   Renders of other families are passed over, for at most the aging bound; on one GPU
   that only reorders work it must do anyway, minus the loads it saves.
3. Switch only when it pays. A render whose family is loaded on another server waits for
   that server when it would start there within two load times from now: here it would
   first wait one load, so waiting delays it by at most the load it saves, and the
   critical path never pays more than the saving. Otherwise the server loads a family:
   the earliest DAG stage first (keyframes unblock whole chains; cues come last), oldest
   first within it.
4. Otherwise the server stays idle until a render arrives, one ends, or one starves.

A slot a chain's render frees is held for that chain's next render, which asks only once
its start frame is carried: in that moment a render of the same family with less of its
chain behind it would take the slot and push the longer chain back a whole render (it
waits at most `hold_share` of the held render's GPU time; a render with more behind it
takes the slot at once), and a render of another family would unload the chain's model
(it waits `hold_s`).
When the keyframe gate opens, every chain's first render is announced (`expect`) and holds
the slot it wins the same way, whichever chain's task happens to ask first.

Projections use estimated load times and GPU seconds per output second for each family,
measured from this run's renders (the policy's figures stand in until the first
measurement). `aware=False` turns the policy off: a render takes whichever slot frees first
(the schedule-unaware DAG), and is still counted in the report.

Several runs share a studio's servers, each with its own scheduler. While renders wait, a
scheduler asks the servers themselves (`GET /queue` and `GET /history`, at most every
`observe_s`): prompts it did not submit count as other runs' busy slots, and the family of
the prompt a server ran last is the family it has loaded (`servers.py`). Its slot is then
claimed without waiting in line; a slot another run took first sends the render back to the
policy. `POST /free` unloading a server's models stays unseen.
"""
