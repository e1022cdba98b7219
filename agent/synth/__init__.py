"""Answer synthesis: vision-language models and the offline extractive synthesizer."""
