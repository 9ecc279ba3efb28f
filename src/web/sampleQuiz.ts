/**
 * The demo's built-in sample quiz: five questions with text answers, ids q1–q5. The service stores
 * answers by question id and knows nothing of the questions, so the quiz is defined here, in the
 * page: `/demo?quiz=<any id>` runs it as that quiz (its policy, if the quiz has one, sets the time).
 */
export const SAMPLE_QUIZ = {
  title: 'Sample quiz',
  questions: [
    { id: 'q1', text: 'What is the capital of France?' },
    { id: 'q2', text: 'How many sides does a hexagon have?' },
    { id: 'q3', text: 'Which gas do plants take in for photosynthesis?' },
    { id: 'q4', text: 'Who wrote "Pride and Prejudice"?' },
    { id: 'q5', text: 'What is 7 × 8?' },
  ],
} as const;
