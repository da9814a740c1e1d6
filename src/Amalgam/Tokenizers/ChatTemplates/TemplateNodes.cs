namespace Amalgam.Tokenizers.ChatTemplates;

// The syntax tree of the Jinja subset: statements (Node) and expressions (Expr).

internal abstract record Node;
internal sealed record TextNode(string Text) : Node;
internal sealed record OutputNode(Expr Value) : Node;
internal sealed record IfNode(IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node> Else) : Node;
internal sealed record ForNode(IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else) : Node;
/// <summary><c>set name = value</c>, or <c>set ns.attr = value</c> when <see cref="Attribute"/> is given.</summary>
internal sealed record SetNode(string Name, string? Attribute, Expr Value) : Node;
internal sealed record LoopControlNode(bool IsBreak) : Node;
/// <summary>transformers' <c>{% generation %}</c> block (marks assistant text for masks); renders its body.</summary>
internal sealed record GenerationNode(IReadOnlyList<Node> Body) : Node;

internal abstract record Expr;
internal sealed record Literal(object? Value) : Expr;
internal sealed record NameExpr(string Name) : Expr;
internal sealed record ListExpr(IReadOnlyList<Expr> Items) : Expr;
internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr;
internal sealed record AttributeExpr(Expr Target, string Name) : Expr;
internal sealed record ItemExpr(Expr Target, Expr Index) : Expr;
internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr;
internal sealed record CallExpr(Expr Target, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr;
internal sealed record FilterExpr(Expr Value, string Name, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr;
internal sealed record TestExpr(Expr Value, string Name, bool Negated, IReadOnlyList<Expr> Args) : Expr;
internal sealed record UnaryExpr(string Op, Expr Operand) : Expr;
internal sealed record BinaryExpr(string Op, Expr Left, Expr Right) : Expr;
internal sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else) : Expr;
