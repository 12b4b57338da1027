"""The synthetic counting world: emoji scenes with exact, known object counts.

kinds        object kinds (emoji + singular/plural nouns) and the held-out split
sprites      emoji rendered once from Noto Color Emoji, scaled/rotated from a cache
backgrounds  flat, gradient, noise, grain, stripes, checker
scenes       scene specs (count, layout, distractors) and rendering
captions     web-like and counting captions
streams      the datasets, each sample a pure function of (seed, index)
writers      WebDataset shards, synthetic CountBench, zero-shot folder, gallery
cli          `countclip synth`
"""
