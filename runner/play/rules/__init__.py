"""End rules: does a turn end the conversation, and who won?

A rule should catch a concession, not a mention, the way a referee would: scripted lines
are never checked, quotes and punctuation are read in one spelling, lines written in
another agent's name are not the speaker's, quoted text is skipped, and a phrase counts
only when it is stated, not asked, hedged or given another object. A stalemate rule ends
a conversation that goes round in circles.
"""

from runner.play.rules.referee import Referee, StalemateRule, TextRule
from runner.play.rules.stalemate import Said

__all__ = ["Referee", "Said", "StalemateRule", "TextRule"]
