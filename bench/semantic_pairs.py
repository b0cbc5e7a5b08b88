"""Hand-written paraphrases of Self-Instruct seed instructions, reworded so ROUGE-L misses them.

Each pair is (seed task id, paraphrase): the same task asked with other words, the kind of
repeat a bootstrapping model writes. Written for this benchmark (not taken from a data set);
``bench/semantic_dedup.py`` reports how many the ROUGE-L rule and the embedding rule catch.
"""

from __future__ import annotations

PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("seed_task_0", "Suggest a high-protein, egg-free morning meal of around 700 to 1000 kcal."),
    ("seed_task_2", "Write a single line that sums up each person listed below."),
    ("seed_task_4", "Come up with a fitting subject line for this email."),
    ("seed_task_5", "What would be a good reply to this interview question?"),
    ("seed_task_6", "Come up with several ideas people could adopt as goals for the coming year."),
    ("seed_task_7", "What does this expression mean? Include a few sample usages."),
    ("seed_task_8", "Compose a three-line Japanese-style poem around this word."),
    ("seed_task_9", "Which film should I see this weekend? Tell me why."),
    ("seed_task_10", "What are some party activities a bunch of friends could enjoy together?"),
    ("seed_task_11", "Write down what to buy at the supermarket for a nutritious dinner."),
    ("seed_task_17", "Put together a to-do list for organizing someone's birthday party."),
    ("seed_task_18", "Answer this message, declining the offer courteously."),
    ("seed_task_20", "Draft the first scene of a scary film in an original way."),
    ("seed_task_21", "Invent an entertaining arithmetic puzzle for kids."),
    ("seed_task_23", "How do I cook this dish? Provide the recipe."),
    ("seed_task_25", "Which are the first four perfect numbers?"),
    ("seed_task_28", "Annotate this function so people can understand the code more easily."),
    ("seed_task_30", "Name some savory snack foods that are soft to chew."),
    ("seed_task_31", "Finish writing this Python snippet."),
    ("seed_task_32", "Describe the correct technique for performing this workout move."),
    ("seed_task_33", "Design a questionnaire about people's food and kitchen routines."),
    ("seed_task_34", "My relationship just ended and I feel terrible. Any advice?"),
    ("seed_task_38", "List words that mean the same as this one."),
    ("seed_task_39", "Pull out every nation mentioned in the text as a comma-separated list."),
    ("seed_task_40", "Help me organize a week-long itinerary for visiting Seattle."),
    ("seed_task_41", "Write a regex that matches what is described."),
    ("seed_task_43", "Spot the word spelled wrong in this sentence and fix it."),
    ("seed_task_45", "Solve this arithmetic question and show how you reasoned."),
    (
        "seed_task_52",
        "Recommend a short set of stretches before jogging, with a brief note on each.",
    ),
    ("seed_task_55", "Tell a lengthy, funny story about doctoral students."),
    ("seed_task_57", 'Compose a sentence whose final word is "published".'),
    ("seed_task_58", "Change this quantity into the other unit."),
)
