"""SAM2Long's bookkeeping, free of torch: slots, pathway scoring and pruning, memory-frame choice, back-tracing.

Terms (as in ../shared/golden/sam2long/README.md, section 2): an object prompted on frame ``s`` gets one plain SAM2
step on ``s+1`` (one slot), then ``P`` *slots* per frame ``t >= s+2``; pathway ``p`` at frame ``t`` is the history
of slot ``p`` of frame ``t-1`` (all ``P`` pathways share the single slot of ``s+1``). Each slot records which
pathway made it (``parent``) and which multimask candidate it kept (``cand``), so a history is a walk along
parents and no per-pathway copy of it is ever made.

Everything here is plain Python on Python floats so that the decisions are exactly the official ones: scores are
float64 sums of ``np.log(iou + 1e-5)``, ordering is Python's stable ``sorted``, and the de-duplication key is
Python's ``round(signed_iou, 2)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOG_EPS = 1e-5           # inside ln(IoU + eps)
DEDUP_DECIMALS = 2       # uncertain frames keep one entry per rounded signed IoU
PROMPT_SCORE = 10.0      # the prompt frame's score in the key re-weighting ranks


@dataclass
class Slot:
    """One kept candidate of one frame (or the single slot of frame s+1)."""

    iou: float       # its IoU prediction (a float32 value)
    osl: float       # the object score of the pathway call that produced it
    acc: float       # cumulative score (float64); 0 on frame s+1
    parent: int      # pathway (= slot index at t-1) it extends; 0 on frame s+1
    cand: int        # multimask candidate 0..2; -1 on frame s+1
    record: int      # where its low-res logits were spilled
    canon: int       # identity of its computation: slots that are exact copies share it

    def valid_memory(self, iou_threshold: float) -> bool:
        """The official test (both strict): a confident mask of a present object."""
        return self.iou > iou_threshold and self.osl > 0


@dataclass
class Entry:
    """One (pathway, candidate) child of frame t before pruning."""

    pathway: int
    cand: int
    score: float     # acc of the pathway + ln(iou + eps), float64
    signed_iou: float  # +iou if the pathway's object score > 0 else -iou


def score_entries(acc: list[float], ious: list[list[float]], object_scores: list[float]) -> list[Entry]:
    """All P x 3 children in pathway-major order (the order the stable sort falls back on)."""
    out = []
    for p, (a, row, osl) in enumerate(zip(acc, ious, object_scores)):
        for j, iou in enumerate(row):
            score = a + np.log(iou + LOG_EPS)
            out.append(Entry(p, j, float(score), iou if osl > 0 else -iou))
    return out


def select_entries(entries: list[Entry], num_pathway: int, uncertainty: float,
                   object_scores: list[float]) -> tuple[list[Entry], bool]:
    """Prune the children to ``num_pathway`` slots; returns them in slot order and whether the frame was uncertain.

    Confident (max |object score| > U): the best P by score, duplicates included. Uncertain: walk the best-first
    list keeping one entry per 2-decimal signed IoU; if fewer than P survive, each pathway that has no kept child
    contributes its best one (in pathway order), so the tree keeps its diversity."""
    ranked = sorted(entries, key=lambda e: e.score, reverse=True)  # stable: ties keep pathway/candidate order
    if max(abs(s) for s in object_scores) > uncertainty:
        return ranked[:num_pathway], False
    kept: list[Entry] = []
    seen: set[float] = set()
    for e in ranked:
        key = round(e.signed_iou, DEDUP_DECIMALS)
        if key not in seen:
            kept.append(e)
            seen.add(key)
        if len(kept) == num_pathway:
            break
    if len(kept) < num_pathway:
        covered = {e.pathway for e in kept}  # fixed before the fill-up, as in the official code
        for p in range(len(object_scores)):
            if p not in covered:
                kept.append(next(e for e in ranked if e.pathway == p))
            if len(kept) == num_pathway:
                break
    return kept, True


@dataclass
class Tree:
    """The per-object tree: slots per frame, and the rule that picks each pathway's memory frames."""

    start: int
    num_pathway: int
    iou_threshold: float
    max_valid: int                  # min(T, max_obj_ptrs_in_encoder) - 1 (15 for videos of 16+ frames)
    prompt_record: int = -1
    frames: dict[int, list[Slot]] = field(default_factory=dict)
    _next_canon: int = 0
    _canon_of: dict = field(default_factory=dict)

    def slot_at(self, frame: int, pathway: int) -> Slot:
        """Slot ``pathway`` of ``frame``; frame s+1 has a single slot that every pathway shares."""
        slots = self.frames[frame]
        return slots[pathway if len(slots) > 1 else 0]

    def pathway_slot(self, t: int, pathway: int) -> Slot:
        """The newest slot of pathway ``pathway`` at frame ``t`` (a slot of frame t-1)."""
        return self.slot_at(t - 1, pathway)

    def canon(self, parent_canon: int, cand: int) -> int:
        """Identity of a child computation: equal (parent identity, candidate) -> equal tensors."""
        key = (parent_canon, cand)
        if key not in self._canon_of:
            self._canon_of[key] = self._next_canon
            self._next_canon += 1
        return self._canon_of[key]

    def memory(self, t: int, pathway: int) -> list[tuple[int, Slot]]:
        """V: the pathway's memory frames for frame ``t``, oldest first (README 2.4.1).

        Walk back from t-1 to s+1 keeping frames whose slot is valid memory, at most ``max_valid``; then t-1 is
        appended if it was not kept (the newest memory is always the previous frame)."""
        valid: list[tuple[int, Slot]] = []
        slot_index = pathway
        for i in range(t - 1, self.start, -1):
            slot = self.slot_at(i, slot_index)
            if slot.valid_memory(self.iou_threshold):
                valid.append((i, slot))
                if len(valid) >= self.max_valid:
                    break
            slot_index = slot.parent
        valid.reverse()
        if not valid or valid[-1][0] != t - 1:
            valid.append((t - 1, self.pathway_slot(t, pathway)))
        return valid

    def acc(self, t: int, pathway: int) -> float:
        return self.pathway_slot(t, pathway).acc

    def backtrace(self, last: int) -> dict[int, int]:
        """Frame -> slot of the final path: slot 0 of the last frame (best cumulative score), followed back along
        parents; frame s+1 is slot 0, the prompt frame is -1."""
        out = {self.start: -1}
        if last <= self.start:
            return out
        k = 0
        for t in range(last, self.start + 1, -1):
            out[t] = k
            k = self.frames[t][k].parent
        out[self.start + 1] = 0
        return out

    def live_canons(self, t: int) -> set[int]:
        """Identities of the slots any pathway of frame ``t + 1`` can still read (its V, README 2.4.1); a future
        frame only ever reads a subset of these, so everything else can be released."""
        live = set()
        for p in range(len(self.frames[t])):
            for _, slot in self.memory(t + 1, p):
                live.add(slot.canon)
        return live
