"""Research loop: the backtest objective, Optuna studies, Kelly refinement, the hyperparameter file."""
