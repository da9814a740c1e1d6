using System.Globalization;

namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>
/// Recursive-descent parser for the Jinja subset chat templates use, with Jinja's precedence (loosest first):
/// <c>x if c else y</c>, or, and, not, comparisons and <c>in</c>, <c>~</c>, + -, * / // %, **, unary minus, then
/// postfix (attribute, subscript, slice, call) followed by filters (<c>|</c>) and tests (<c>is</c>). Statements: if/elif/
/// else, for (with else, an <c>if</c> filter and tuple targets), set, break/continue, generation. Anything else is refused
/// with its name and line.
/// </summary>
internal sealed class TemplateParser
{
    private readonly List<Token> _tokens;
    private int _pos;

    private TemplateParser(List<Token> tokens) => _tokens = tokens;

    public static IReadOnlyList<Node> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source));
        var body = parser.ParseBody(out var end);
        if (end is not null) throw new TemplateException($"line {parser.Line}: unexpected '{end}'");
        return body;
    }

    private Token Peek => _tokens[_pos];
    private int Line => Peek.Line;
    private Token Next() => _tokens[_pos++];

    /// <summary>Nodes up to a block tag this level does not own (returned in <paramref name="end"/>, its name consumed) or the end.</summary>
    private List<Node> ParseBody(out string? end, params string[] ends)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Next();
            switch (t.Kind)
            {
                case TokenKind.End: end = null; _pos--; if (ends.Length > 0) throw new TemplateException($"template ends before {{% {ends[^1]} %}}"); return nodes;
                case TokenKind.Text: nodes.Add(new TextNode(t.Value)); break;
                case TokenKind.OutputStart:
                    nodes.Add(new OutputNode(ParseExpression()));
                    Expect(TokenKind.TagEnd, "}}");
                    break;
                case TokenKind.BlockStart:
                    var name = Peek.Kind == TokenKind.Name ? Peek.Value : throw new TemplateException($"line {t.Line}: expected a statement name");
                    if (ends.Contains(name)) { _pos++; end = name; return nodes; }
                    _pos++;
                    nodes.Add(ParseStatement(name, t.Line));
                    break;
                default: throw new TemplateException($"line {t.Line}: unexpected {t.Kind}");
            }
        }
    }

    private Node ParseStatement(string name, int line)
    {
        switch (name)
        {
            case "if": return ParseIf();
            case "for": return ParseFor();
            case "set":
                var target = ExpectName();
                string? attribute = null;
                if (IsOp(".")) { _pos++; attribute = ExpectName(); }
                if (!IsOp("=")) throw new TemplateException($"line {line}: block set ({{% set {target} %}}...{{% endset %}}) is not supported");
                _pos++;
                var value = ParseTupleOrExpression();
                Expect(TokenKind.TagEnd, "%}");
                return new SetNode(target, attribute, value);
            case "break" or "continue":
                Expect(TokenKind.TagEnd, "%}");
                return new LoopControlNode(name == "break");
            case "generation":
                Expect(TokenKind.TagEnd, "%}");
                var body = ParseBody(out _, "endgeneration");
                Expect(TokenKind.TagEnd, "%}");
                return new GenerationNode(body);
            default:
                throw new TemplateException($"line {line}: the statement '{name}' is not supported by Amalgam's chat-template renderer");
        }
    }

    private IfNode ParseIf()
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = ParseExpression();
        Expect(TokenKind.TagEnd, "%}");
        while (true)
        {
            var body = ParseBody(out var end, "elif", "else", "endif");
            branches.Add((condition, body));
            if (end == "elif") { condition = ParseExpression(); Expect(TokenKind.TagEnd, "%}"); continue; }
            Expect(TokenKind.TagEnd, "%}");
            if (end == "endif") return new IfNode(branches, []);
            var elseBody = ParseBody(out _, "endif");
            Expect(TokenKind.TagEnd, "%}");
            return new IfNode(branches, elseBody);
        }
    }

    private ForNode ParseFor()
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(",")) { _pos++; targets.Add(ExpectName()); }
        if (!(Peek.Kind == TokenKind.Name && Peek.Value == "in")) throw new TemplateException($"line {Line}: expected 'in' in for");
        _pos++;
        var iterable = ParseExpression(allowConditional: false);
        Expr? filter = null;
        if (Peek.Kind == TokenKind.Name && Peek.Value == "if") { _pos++; filter = ParseExpression(allowConditional: false); }
        if (Peek.Kind == TokenKind.Name && Peek.Value == "recursive") throw new TemplateException($"line {Line}: recursive for loops are not supported");
        Expect(TokenKind.TagEnd, "%}");
        var body = ParseBody(out var end, "else", "endfor");
        Expect(TokenKind.TagEnd, "%}");
        IReadOnlyList<Node> elseBody = [];
        if (end == "else") { elseBody = ParseBody(out _, "endfor"); Expect(TokenKind.TagEnd, "%}"); }
        return new ForNode(targets, iterable, filter, body, elseBody);
    }

    private Expr ParseTupleOrExpression()
    {
        var first = ParseExpression();
        if (!IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (IsOp(",")) { _pos++; if (Peek.Kind == TokenKind.TagEnd) break; items.Add(ParseExpression()); }
        return new ListExpr(items);
    }

    public Expr ParseExpression(bool allowConditional = true)
    {
        var expr = ParseOr();
        if (allowConditional && IsName("if"))
        {
            _pos++;
            var condition = ParseOr();
            Expr? otherwise = null;
            if (IsName("else")) { _pos++; otherwise = ParseExpression(); }
            return new ConditionalExpr(condition, expr, otherwise);
        }
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or")) { _pos++; left = new BinaryExpr("or", left, ParseAnd()); }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { _pos++; left = new BinaryExpr("and", left, ParseNot()); }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not")) { _pos++; return new UnaryExpr("not", ParseNot()); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var left = ParseConcat();
        while (true)
        {
            if (Peek.Kind == TokenKind.Operator && Peek.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
                left = new BinaryExpr(Next().Value, left, ParseConcat());
            else if (IsName("in")) { _pos++; left = new BinaryExpr("in", left, ParseConcat()); }
            else if (IsName("not") && _tokens[_pos + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                _pos += 2;
                left = new UnaryExpr("not", new BinaryExpr("in", left, ParseConcat()));
            }
            else return left;
        }
    }

    private Expr ParseConcat()
    {
        var left = ParseAdd();
        while (IsOp("~")) { _pos++; left = new BinaryExpr("~", left, ParseAdd()); }
        return left;
    }

    private Expr ParseAdd()
    {
        var left = ParseMul();
        while (IsOp("+") || IsOp("-")) left = new BinaryExpr(Next().Value, left, ParseMul());
        return left;
    }

    private Expr ParseMul()
    {
        var left = ParsePow();
        while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) left = new BinaryExpr(Next().Value, left, ParsePow());
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary();
        while (IsOp("**")) { _pos++; left = new BinaryExpr("**", left, ParseUnary()); }
        return left;
    }

    private Expr ParseUnary()
    {
        if (IsOp("-") || IsOp("+")) { var op = Next().Value; return new UnaryExpr(op, ParseUnary()); }
        return ParseFiltersAndTests(ParsePostfix(ParsePrimary()));
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.String:
                var s = t.Value;
                while (Peek.Kind == TokenKind.String) s += Next().Value; // adjacent literals concatenate
                return new Literal(s);
            case TokenKind.Integer: return new Literal(long.Parse(t.Value, CultureInfo.InvariantCulture));
            case TokenKind.Float: return new Literal(double.Parse(t.Value, CultureInfo.InvariantCulture));
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new Literal(true),
                    "false" or "False" => new Literal(false),
                    "none" or "None" => new Literal(null),
                    _ => new NameExpr(t.Value),
                };
            case TokenKind.Operator when t.Value == "(":
                if (IsOp(")")) { _pos++; return new ListExpr([]); }
                var inner = ParseExpression();
                if (IsOp(","))
                {
                    var items = new List<Expr> { inner };
                    while (IsOp(",")) { _pos++; if (IsOp(")")) break; items.Add(ParseExpression()); }
                    inner = new ListExpr(items);
                }
                ExpectOp(")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                var list = new List<Expr>();
                while (!IsOp("]")) { list.Add(ParseExpression()); if (!IsOp(",")) break; _pos++; }
                ExpectOp("]");
                return new ListExpr(list);
            case TokenKind.Operator when t.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var key = ParseExpression();
                    ExpectOp(":");
                    pairs.Add((key, ParseExpression()));
                    if (!IsOp(",")) break;
                    _pos++;
                }
                ExpectOp("}");
                return new DictExpr(pairs);
            default:
                throw new TemplateException($"line {t.Line}: unexpected {(t.Kind == TokenKind.TagEnd ? "end of tag" : $"'{t.Value}'")} in an expression");
        }
    }

    private Expr ParsePostfix(Expr expr)
    {
        while (true)
        {
            if (IsOp(".")) { _pos++; expr = new AttributeExpr(expr, ExpectName()); }
            else if (IsOp("[")) { _pos++; expr = ParseSubscript(expr); }
            else if (IsOp("(")) { _pos++; var (args, kwargs) = ParseArgs(); expr = new CallExpr(expr, args, kwargs); }
            else return expr;
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        Expr? start = null, stop = null, step = null;
        if (!IsOp(":")) start = ParseExpression();
        if (!IsOp(":")) { ExpectOp("]"); return new ItemExpr(target, start!); }
        _pos++;
        if (!IsOp(":") && !IsOp("]")) stop = ParseExpression();
        if (IsOp(":")) { _pos++; if (!IsOp("]")) step = ParseExpression(); }
        ExpectOp("]");
        return new SliceExpr(target, start, stop, step);
    }

    /// <summary>Arguments after an opening parenthesis, through the closing one.</summary>
    private (List<Expr>, List<(string, Expr)>) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == TokenKind.Name && _tokens[_pos + 1] is { Kind: TokenKind.Operator, Value: "=" })
            {
                var name = Next().Value;
                _pos++;
                kwargs.Add((name, ParseExpression()));
            }
            else args.Add(ParseExpression());
            if (!IsOp(",")) break;
            _pos++;
        }
        ExpectOp(")");
        return (args, kwargs);
    }

    private Expr ParseFiltersAndTests(Expr expr)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                _pos++;
                var name = ExpectName();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (IsOp("(")) { _pos++; (args, kwargs) = ParseArgs(); }
                expr = new FilterExpr(expr, name, args, kwargs);
            }
            else if (IsName("is"))
            {
                _pos++;
                bool negated = false;
                if (IsName("not")) { _pos++; negated = true; }
                var name = ExpectName();
                List<Expr> args = [];
                if (IsOp("(")) { _pos++; (args, _) = ParseArgs(); }
                expr = new TestExpr(expr, name, negated, args);
            }
            else return expr;
        }
    }

    private bool IsOp(string op) => Peek.Kind == TokenKind.Operator && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == TokenKind.Name && Peek.Value == name;

    private string ExpectName()
    {
        var t = Next();
        // Tests and filters may be keywords in Python (none, true, false are names here).
        if (t.Kind == TokenKind.Name) return t.Value;
        throw new TemplateException($"line {t.Line}: expected a name, found '{t.Value}'");
    }

    private void ExpectOp(string op)
    {
        var t = Next();
        if (t.Kind != TokenKind.Operator || t.Value != op) throw new TemplateException($"line {t.Line}: expected '{op}', found '{t.Value}'");
    }

    private void Expect(TokenKind kind, string what)
    {
        var t = Next();
        if (t.Kind != kind) throw new TemplateException($"line {t.Line}: expected '{what}', found '{(t.Kind == TokenKind.TagEnd ? "end of tag" : t.Value)}'");
    }
}
