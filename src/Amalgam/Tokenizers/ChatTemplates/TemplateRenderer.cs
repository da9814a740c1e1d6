using System.Text;
using static Amalgam.Tokenizers.ChatTemplates.TemplateValues;

namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>
/// Renders a parsed template with Jinja's semantics: a for loop's body gets a fresh scope each iteration (so a
/// <c>set</c> inside it does not leak, which is why templates use <c>namespace()</c>), if-blocks share their scope,
/// Python truthiness, and <c>and</c>/<c>or</c> returning an operand. Errors carry the messages Jinja would give.
/// </summary>
internal sealed class TemplateRenderer
{
    private sealed class Scope(Scope? parent)
    {
        private readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);
        public void Set(string name, object? value) => _values[name] = value;
        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s._values.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
        public Scope? Parent { get; } = parent;
    }

    private enum Flow { Normal, Break, Continue }

    private readonly StringBuilder _out = new();

    public static string Render(IReadOnlyList<Node> nodes, IReadOnlyDictionary<string, object?> globals)
    {
        var root = new Scope(null);
        foreach (var (k, v) in globals) root.Set(k, v);
        var r = new TemplateRenderer();
        r.RenderNodes(nodes, new Scope(root));
        return r._out.ToString();
    }

    private Flow RenderNodes(IReadOnlyList<Node> nodes, Scope scope)
    {
        foreach (var node in nodes)
        {
            var flow = RenderNode(node, scope);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow RenderNode(Node node, Scope scope)
    {
        switch (node)
        {
            case TextNode t: _out.Append(t.Text); return Flow.Normal;
            case OutputNode o: _out.Append(Str(Eval(o.Value, scope))); return Flow.Normal;
            case IfNode i:
                foreach (var (condition, body) in i.Branches)
                    if (Truthy(Eval(condition, scope))) return RenderNodes(body, scope);
                return RenderNodes(i.Else, scope);
            case ForNode f: return RenderFor(f, scope);
            case SetNode s:
                var value = Eval(s.Value, scope);
                if (s.Attribute is null) { scope.Set(s.Name, value); return Flow.Normal; }
                if (!scope.TryGet(s.Name, out var target) || target is not Namespace ns)
                    throw new TemplateException($"set {s.Name}.{s.Attribute}: cannot assign attribute on non-namespace object");
                ns.Values[s.Attribute] = value;
                return Flow.Normal;
            case LoopControlNode c: return c.IsBreak ? Flow.Break : Flow.Continue;
            case GenerationNode g: return RenderNodes(g.Body, scope);
            default: throw new TemplateException($"unsupported node {node.GetType().Name}");
        }
    }

    private Flow RenderFor(ForNode f, Scope scope)
    {
        var items = Iterate(Eval(f.Iterable, scope), "for loop").ToList();
        if (f.Filter is not null)
            items = items.Where(item => { var s = new Scope(scope); Bind(f.Targets, item, s); return Truthy(Eval(f.Filter, s)); }).ToList();
        if (items.Count == 0) return RenderNodes(f.Else, new Scope(scope));
        for (int i = 0; i < items.Count; i++)
        {
            var s = new Scope(scope);
            Bind(f.Targets, items[i], s);
            var loop = new OrderedDictionary<string, object?>
            {
                ["index"] = (long)(i + 1), ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
                ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new Undefined("loop.nextitem"),
            };
            s.Set("loop", loop);
            if (RenderNodes(f.Body, s) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private static void Bind(IReadOnlyList<string> targets, object? item, Scope scope)
    {
        if (targets.Count == 1) { scope.Set(targets[0], item); return; }
        var parts = item as List<object?> ?? throw new TemplateException($"cannot unpack {TypeName(item)} into {targets.Count} names");
        if (parts.Count != targets.Count) throw new TemplateException($"cannot unpack {parts.Count} values into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }

    public static IEnumerable<object?> Iterate(object? v, string where) => v switch
    {
        List<object?> l => l,
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>(),
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        Undefined => [],
        _ => throw new TemplateException($"{where}: '{TypeName(v)}' object is not iterable"),
    };

    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case Literal l: return l.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr d:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, val) in d.Items)
                    dict[Eval(k, scope) as string ?? throw new TemplateException("dict keys must be strings")] = Eval(val, scope);
                return dict;
            case AttributeExpr a: return TemplateBuiltins.GetAttribute(Eval(a.Target, scope), a.Name);
            case ItemExpr i: return TemplateBuiltins.GetItem(Eval(i.Target, scope), Eval(i.Index, scope));
            case SliceExpr s:
                return TemplateBuiltins.Slice(Eval(s.Target, scope), s.Start is null ? null : Eval(s.Start, scope),
                    s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope));
            case CallExpr c:
                var fn = Eval(c.Target, scope);
                if (fn is Undefined u) throw new TemplateException(u.Description);
                if (fn is not TemplateFunction function) throw new TemplateException($"'{TypeName(fn)}' object is not callable");
                return function(c.Args.Select(x => Eval(x, scope)).ToList(), c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope)));
            case FilterExpr f:
                return TemplateBuiltins.Filter(f.Name, Eval(f.Value, scope), f.Args.Select(x => Eval(x, scope)).ToList(),
                    f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope)));
            case TestExpr t:
                var result = TemplateBuiltins.Test(t.Name, Eval(t.Value, scope), t.Args.Select(x => Eval(x, scope)).ToList());
                return t.Negated ? !result : result;
            case UnaryExpr u2:
                var operand = Eval(u2.Operand, scope);
                return u2.Op switch
                {
                    "not" => !Truthy(operand),
                    "-" => operand switch { long l => (object)(-l), double d => -d, _ => throw new TemplateException($"bad operand type for unary -: '{TypeName(operand)}'") },
                    _ => operand,
                };
            case BinaryExpr b:
                if (b.Op == "and") { var left = Eval(b.Left, scope); return Truthy(left) ? Eval(b.Right, scope) : left; }
                if (b.Op == "or") { var left = Eval(b.Left, scope); return Truthy(left) ? left : Eval(b.Right, scope); }
                return TemplateBuiltins.Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope));
            case ConditionalExpr c2:
                if (Truthy(Eval(c2.Condition, scope))) return Eval(c2.Then, scope);
                return c2.Else is null ? new Undefined("conditional expression without else") : Eval(c2.Else, scope);
            default: throw new TemplateException($"unsupported expression {e.GetType().Name}");
        }
    }
}
