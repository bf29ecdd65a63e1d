"""One conversation's play: seats take turns (:mod:`.seat`, :mod:`.turns`), the referee
judges (:mod:`.rules`), the recorder writes it down (:mod:`.recorder`), observers are told
(:mod:`.events`); :mod:`.conversation` holds them together."""
